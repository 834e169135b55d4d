"""A short fuzz run over every decoder entry point; the long run is benchmarks/fuzz_decode.py."""

import random
import time
from pathlib import Path

import numpy as np
import pytest

import codec
import entropy
from codec.container import read_container
from codec.fuzzing import mutate

TIME_BOUND_S = 30.0


CONFORMANCE = Path(__file__).resolve().parents[2] / "bitstreams" / "conformance"


@pytest.fixture(scope="module")
def seeds(kodak_crops):
    own = [codec.compress(kodak_crops[0][:40, :56], quality=q) for q in (1, 6)] + [
        codec.compress(kodak_crops[1][:9, :13].mean(axis=2).astype(np.uint8), quality=3)]
    others = ["pc-mnist-one", "pc-fashion-mnist-one", "overfit-q2-rgb"]
    # the other decoders, in the current container version and in version 1
    return own + [(CONFORMANCE / v / f"{name}.lcd").read_bytes() for v in ("v2", "v1") for name in others] + [
        (CONFORMANCE / "v2" / f"{name}-q2-rgb.lcd").read_bytes() for name in ("mlicv2", "s2lic")]


def test_mutated_streams_end_in_codec_error_or_an_image(seeds):
    rng = random.Random(1234)
    outcomes = {"error": 0, "image": 0}
    for i in range(150):
        what, data = mutate(rng.choice(seeds), rng)
        t0 = time.perf_counter()
        try:
            out = codec.decompress(data)
        except codec.CodecError:
            outcomes["error"] += 1
        else:
            assert out.dtype == np.uint8 and out.ndim in (3, 4), what
            outcomes["image"] += 1
        assert time.perf_counter() - t0 < TIME_BOUND_S, what
        try:
            codec.info(data)
        except codec.CodecError:
            pass
    assert outcomes["error"] > 0


def test_entropy_decoder_on_mutated_sections(seeds):
    from codec.hyperprior.coding import load_codec

    impl = load_codec()
    c = read_container(seeds[0])
    rng = random.Random(99)
    shape = (1, impl.model.config.N, 1, 1)
    ids = np.broadcast_to(np.arange(shape[1], dtype=np.uint8)[None, :, None, None], shape)
    for _ in range(200):
        blob = bytearray(c.sections[0])
        if blob:
            blob[rng.randrange(len(blob))] ^= 1 << rng.randrange(8)
        try:
            out = entropy.decode(bytes(blob), ids, impl.tables.z)
        except entropy.RansError:
            continue
        assert out.shape == shape
