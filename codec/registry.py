"""One registry of codecs: names for people, numeric wire ids for the container.

Wire ids are fixed in :data:`codec.container.CODEC_IDS` (the table FORMAT.md documents);
registering a name under any other id, or twice, is an error. The CLI, the library and the
container all look codecs up here and nowhere else.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .container import CODEC_IDS
from .errors import CodecError
from .interfaces import EncoderOption


@dataclass(frozen=True)
class CodecSpec:
    """Everything the library, the CLI and ``lcodec eval`` know about a codec."""

    name: str
    wire_id: int
    target: str  # "module:attr" of a factory taking no arguments (a CodecFactory)
    summary: str
    #: quality levels; empty for a codec without any (lossless)
    qualities: tuple[int, ...] = ()
    default_quality: int | None = None
    lossless: bool = False
    video: bool = False
    #: encoder options beyond the quality, declared once for the library, CLI and eval
    options: tuple[EncoderOption, ...] = ()
    #: named option sets that ``lcodec eval`` measures as codecs of their own
    #: (``{"overfit-medium": {"preset": "medium"}}``)
    variants: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    #: the variant ``lcodec eval`` measures when the codec is named plainly (None: the codec as is)
    default_variant: str | None = None
    #: command lines for ``lcodec compress --help``
    examples: tuple[str, ...] = ()
    #: "module:attr" of ``train(request: TrainRequest, log, **train_options)``; None: not trainable
    trainer: str | None = None
    train_options: tuple[EncoderOption, ...] = ()
    train_examples: tuple[str, ...] = ()
    #: decoding work bound: a stream may declare at most this many pixels per byte of its size
    #: (real streams stay far below; see codec.api.decompress)
    max_pixels_per_byte: int = 1 << 12
    free_pixels: int = 1 << 22  # ... unless it declares no more than this
    #: sequential decoding steps per wavefront unit of the largest grid (0: no sequential loop
    #: beyond the pixel-parallel passes); a stream may declare at most ``max_steps_per_byte``
    #: steps per byte of its size, or ``free_steps``
    wavefront: int = 0
    max_steps_per_byte: int = 16
    free_steps: int = 4096
    #: fits a model to each image at encode time (minutes per image): left out of evaluations
    #: unless asked for by name
    fitted: bool = False

    def decode_steps(self, width: int, height: int, frames: int = 1) -> int:
        """The sequential steps a stream of this size declares: one per anti-diagonal
        ``column + wavefront * row`` for a wavefront decoder, 0 otherwise."""
        return frames * (width + self.wavefront * height) if self.wavefront else 0

    @property
    def kind(self) -> str:
        """A word for people: lossy image, lossless, or video."""
        return "video" if self.video else "lossless" if self.lossless else "image"

    def option(self, name: str) -> EncoderOption | None:
        return next((o for o in self.options if o.name == name), None)

    def installed_weights(self) -> list[Any]:
        """The weights files installed for this codec (``NAME.json`` or ``NAME-*.json``
        manifests in its package's ``weights`` folder or on ``$LCODEC_WEIGHTS``), without
        importing the implementation."""
        from pathlib import Path

        from .weightfiles import installed_weights

        package = Path(__file__).parent / self.target.split(":")[0].split(".")[1] / "weights"
        return installed_weights(package, f"{self.name}.json") + installed_weights(package, f"{self.name}-*.json")

    def load(self) -> Any:
        """Import the implementation's factory (torch and friends load only here)."""
        module, attr = self.target.split(":")
        return getattr(importlib.import_module(module), attr)()


_BY_NAME: dict[str, CodecSpec] = {}
_BY_ID: dict[int, CodecSpec] = {}


def register_codec(spec: CodecSpec) -> None:
    if spec.default_variant is not None and spec.default_variant not in spec.variants:
        raise ValueError(f"codec {spec.name!r}: default variant {spec.default_variant!r} is not one of its variants")
    if spec.qualities and spec.default_quality not in spec.qualities:
        raise ValueError(f"codec {spec.name!r}: default quality {spec.default_quality} is not one of its qualities")
    clash = set(spec.variants) & (set(_BY_NAME) | {spec.name})
    if clash:
        raise ValueError(f"codec {spec.name!r}: variant names {sorted(clash)} are taken")
    for other in _BY_NAME.values():
        for opt in spec.options:
            theirs = other.option(opt.name)
            if theirs is not None and theirs.type is not opt.type:
                raise ValueError(f"option {opt.name!r} of {spec.name!r} has another type in {other.name!r}")
    if spec.name in _BY_NAME:
        raise ValueError(f"codec {spec.name!r} is already registered")
    if CODEC_IDS.get(spec.name) != spec.wire_id:
        raise ValueError(f"codec {spec.name!r} must use wire id {CODEC_IDS.get(spec.name)}, not {spec.wire_id}")
    if spec.wire_id in _BY_ID:
        raise ValueError(f"wire id {spec.wire_id} is already taken by {_BY_ID[spec.wire_id].name!r}")
    _BY_NAME[spec.name] = spec
    _BY_ID[spec.wire_id] = spec


def get_codec(name: str) -> CodecSpec:
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(sorted(_BY_NAME)) or "none"
        raise CodecError(f"unknown codec {name!r} (available: {known})") from None


def codec_for_wire_id(wire_id: int) -> CodecSpec:
    try:
        return _BY_ID[wire_id]
    except KeyError:
        raise CodecError(f"stream uses codec id {wire_id}, which this version of lcodec does not know") from None


def codecs(lossless: bool | None = None, video: bool | None = None, fitted: bool | None = None) -> list[CodecSpec]:
    """Registered codecs by wire id, optionally only those with the given properties."""
    return [s for s in sorted(_BY_NAME.values(), key=lambda s: s.wire_id)
            if (lossless is None or s.lossless == lossless) and (video is None or s.video == video)
            and (fitted is None or s.fitted == fitted)]


def resolve_variant(name: str) -> tuple[CodecSpec, dict[str, object]]:
    """A codec name or a variant name (``overfit-medium``) as (spec, encoder options)."""
    if name in _BY_NAME:
        return _BY_NAME[name], {}
    for spec in _BY_NAME.values():
        if name in spec.variants:
            return spec, dict(spec.variants[name])
    variants = ", ".join(v for s in codecs() for v in s.variants) or "none"
    raise CodecError(f"unknown codec {name!r} (codecs: {', '.join(s.name for s in codecs())}; "
                     f"variants: {variants})")


def all_options() -> dict[str, EncoderOption]:
    """Every encoder option of every codec, by name (one type per name, checked at registration)."""
    out: dict[str, EncoderOption] = {}
    for spec in codecs():
        for opt in spec.options:
            out.setdefault(opt.name, opt)
    return out


#: what ``compress`` uses when no codec is named
DEFAULT_CODEC = "hyperprior"


register_codec(CodecSpec(
    name="hyperprior", wire_id=CODEC_IDS["hyperprior"],
    qualities=(1, 2, 3, 4, 5, 6), default_quality=3,
    target="codec.hyperprior.coding:load_default",
    # real streams stay below 200 pixels per byte: a flat white 4096x4096 image at the lowest
    # quality is 99; the default bound of 4096 leaves room
    summary="mean-scale hyperprior (Minnen et al. 2018), 6 qualities from one gain-modulated model",
    options=(
        EncoderOption("refine", str, "encode-time latent refinement with stochastic Gumbel annealing "
                      "(Yang et al. 2020): fast (100 iterations), slow (600) or an iteration count; "
                      "slower encoding, the same decoder", metavar="fast|slow|N"),
    ),
    variants={"hyperprior-refine-fast": {"refine": "fast"}, "hyperprior-refine-slow": {"refine": "slow"}},
    examples=("lcodec compress kodim01.png -o k.lcd -q 6    # highest quality",
              "lcodec compress kodim01.png -o k.lcd --refine slow   # smaller file, minutes to encode"),
    trainer="codec.hyperprior.train:train_codec",
    train_options=(
        EncoderOption("synthesis_width", int, "widen the synthesis transform of the starting weights to this "
                      "many channels, keeping what they compute (not with --from-scratch or a checkpoint)",
                      minimum=1),
        EncoderOption("lambdas", str, "extend the starting weights' qualities to these lambdas (its own "
                      "first, then higher ones)", metavar="L[,L...]"),
    ),
    train_examples=(
        "lcodec train --steps 200 --run-dir /tmp/smoke --from-scratch",
        "lcodec train --time-budget 2h --threads 2 --compile",
        "lcodec train --time-budget 10h --synthesis-width 128 "
        "--lambdas 0.0018,0.0035,0.0067,0.013,0.025,0.0483,0.0932,0.18",
    ),
))
#: options shared by the sliced context codecs (codec/context/)
CONTEXT_REFINE = EncoderOption("refine", str, "encode-time latent refinement with stochastic Gumbel annealing "
                               "through the context model (Yang et al. 2020): fast (100 iterations), slow (600) "
                               "or an iteration count; slower encoding, the same decoder", metavar="fast|slow|N")
JOINT_FROM = EncoderOption("joint_from", str, "run the end-to-end stage (transforms and entropy model together) "
                           "from this stage-1 checkpoint", metavar="CHECKPOINT")


def context_codec(name: str, summary: str, ablations: str) -> CodecSpec:
    """The entry of a sliced context codec (codec/context/): the hyperprior's qualities, the
    refinement option and its variants, two-stage training."""
    return CodecSpec(
        name=name, wire_id=CODEC_IDS[name], qualities=(1, 2, 3, 4, 5, 6), default_quality=3,
        target=f"codec.{name}.coding:load_default", summary=summary, options=(CONTEXT_REFINE,),
        variants={f"{name}-refine-fast": {"refine": "fast"}, f"{name}-refine-slow": {"refine": "slow"}},
        examples=(f"lcodec compress kodim01.png -o k.lcd --codec {name} -q 4",
                  f"lcodec compress kodim01.png -o k.lcd --codec {name} --refine fast   # smaller file, slower"),
        trainer=f"codec.{name}.train:train_codec",
        train_options=(
            EncoderOption("without", str, f"stage 1: switch these contexts off (an ablation): {ablations}",
                          metavar="NAME[,NAME...]"),
            JOINT_FROM,
        ),
        train_examples=(f"lcodec train --codec {name} --time-budget 1h --threads 2 --run-dir runs/{name}-s1",
                        f"lcodec train --codec {name} --joint-from runs/{name}-s1/checkpoint.pt --time-budget 1h "
                        f"--run-dir runs/{name}-joint --export {name}-lite.safetensors"),
    )


register_codec(context_codec(
    "mlicv2", "MLICv2-lite (Jiang et al. 2025): the hyperprior's transforms with a multi-reference entropy model "
              "(channel, local, global and hyperprior-guided contexts, 8 slices x 2 checkerboard passes)",
    "channel, reweight, local, global_context, hyper_guided, lrp"))
register_codec(context_codec(
    "s2lic", "S2LIC-lite (Wang et al. 2024): the hyperprior's transforms with the ACGC entropy model (adaptive "
             "channel-wise attention, deformable global-inter attention, 8 slices x 2 checkerboard passes)",
    "channel_attention, global_inter, local, lrp"))
register_codec(CodecSpec(
    name="pc-mnist", wire_id=CODEC_IDS["pc-mnist"], lossless=True,
    target="codec.pc.coding:load_mnist",
    summary="lossless 28x28 grayscale, hidden Chow-Liu tree trained on MNIST (Liu et al. 2022)",
    examples=("lcodec compress digit.png --codec pc-mnist   # lossless, 28x28 grayscale",
              "lcodec compress t10k-images-idx3-ubyte.gz --codec pc-mnist -o test.lcd   # a set in one stream"),
    max_pixels_per_byte=64, free_pixels=1 << 18,  # real digit sets code at about 6 pixels per byte
))
register_codec(CodecSpec(
    name="pc-fashion-mnist", wire_id=CODEC_IDS["pc-fashion-mnist"], lossless=True,
    target="codec.pc.coding:load_fashion_mnist",
    summary="lossless 28x28 grayscale, hidden Chow-Liu tree trained on Fashion-MNIST (Liu et al. 2022)",
    max_pixels_per_byte=64, free_pixels=1 << 18,  # real sets code at about 2.5 pixels per byte
))
register_codec(CodecSpec(
    name="overfit", wire_id=CODEC_IDS["overfit"],
    qualities=(1, 2, 3, 4, 5, 6), default_quality=3,
    target="codec.overfit.coding:load_default",
    summary="per-image overfitted latents + ARM + synthesis (Cool-chic/C3 style); slow to encode, no weights",
    options=(
        EncoderOption("preset", str, "encoder effort: fitting iterations (default fast)",
                      choices=("fast", "medium", "slow")),
        EncoderOption("time_budget", float, "stop fitting after this long (seconds, or 90s, 10m, 1h)",
                      minimum=0.0, duration=True, metavar="DURATION"),
        EncoderOption("iterations", int, "fitting iterations (overrides the preset)", minimum=1),
        EncoderOption("target_bpp", float, "search lambda for the largest file at or below this rate "
                      "(replaces the quality)", minimum=0.01, maximum=8.0, metavar="BPP"),
    ),
    variants={"overfit-fast": {"preset": "fast"}, "overfit-medium": {"preset": "medium"},
              "overfit-slow": {"preset": "slow"}},
    default_variant="overfit-fast",
    # the ARM decodes by anti-diagonals c + 2r (codec/overfit/runtime.py): about 50 us each here,
    # so at most 16 per byte keeps a 1 KiB stream under a second; real streams stay below 1 per byte
    wavefront=2,
    examples=("lcodec compress photo.png --codec overfit --preset medium   # fits a model to this image",
              "lcodec compress photo.png --codec overfit --target-bpp 0.5"),
    fitted=True,
))
