"""The registry: the one place codecs are declared."""

import pytest

import codec
from codec.interfaces import EncoderOption
from codec.registry import CodecSpec, all_options, register_codec, resolve_variant


def test_declared_qualities_are_what_the_implementations_code() -> None:
    from codec.hyperprior.coding import load_codec
    from codec.overfit.coding import LAMBDAS

    assert codec.get_codec("overfit").qualities == tuple(range(1, len(LAMBDAS) + 1))
    trained = load_codec().trained_qualities
    assert set(codec.get_codec("hyperprior").qualities) <= set(trained)


def test_variants_resolve_to_their_options() -> None:
    spec, options = resolve_variant("overfit-medium")
    assert spec.name == "overfit" and options == {"preset": "medium"}
    assert resolve_variant("hyperprior")[1] == {}
    with pytest.raises(codec.CodecError, match="overfit-slow"):
        resolve_variant("overfit-ludicrous")


def test_registration_refuses_conflicts() -> None:
    base = dict(target="x:y", summary="test")
    with pytest.raises(ValueError, match="wire id"):
        register_codec(CodecSpec(name="not-a-codec", wire_id=99, **base))
    with pytest.raises(ValueError, match="already registered"):
        register_codec(CodecSpec(name="hyperprior", wire_id=1, **base))
    with pytest.raises(ValueError, match="default quality"):
        register_codec(CodecSpec(name="hyperprior", wire_id=1, qualities=(1, 2), default_quality=3, **base))


def test_options_are_checked_against_their_declaration() -> None:
    opts = all_options()
    assert opts["preset"].check("slow") == "slow"
    assert opts["time_budget"].check(3) == 3.0
    for name, bad in (("preset", "ludicrous"), ("iterations", 0), ("iterations", True), ("target_bpp", 9.0),
                      ("time_budget", float("nan")), ("iterations", "5")):
        with pytest.raises(ValueError):
            opts[name].check(bad)
    assert EncoderOption("x_y", int, "").flag == "--x-y"


def test_library_refuses_foreign_options_and_qualities() -> None:
    import numpy as np

    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(codec.CodecError, match="takes no option preset"):
        codec.compress(img, codec="hyperprior", preset="fast")
    with pytest.raises(codec.CodecError, match="iterations must be at least 1"):
        codec.compress(img, codec="overfit", iterations=0)
    with pytest.raises(codec.CodecError, match="quality must be one of"):
        codec.compress(img, quality=99)
