"""Every conformance stream must decode to exactly the recorded pixels."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import codec

HERE = Path(__file__).resolve().parents[2] / "bitstreams" / "conformance"
MANIFEST = json.loads((HERE / "manifest.json").read_text())


def test_every_shipped_codec_has_streams_at_two_qualities():
    for spec in codec.codecs():
        qualities = {m["quality"] for m in MANIFEST.values() if m["codec"] == spec.name}
        assert len(qualities) >= 2, spec.name


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_conformance_stream_decodes_exactly(name):
    entry = MANIFEST[name]
    data = (HERE / entry["stream"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["stream_sha256"]
    pixels = codec.decompress(data)
    assert list(pixels.shape) == entry["shape"]
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == entry["decoded_sha256"]


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_encoder_still_writes_the_same_stream(name):
    """The encoder is deterministic too: re-encoding the source gives the same bytes."""
    from codec.imageio import read_image

    entry = MANIFEST[name]
    kodak = HERE.parents[2] / "shared" / "data" / "kodak"
    assert kodak.is_dir(), "the conformance sources are Kodak crops from ../shared/data/kodak"
    src = entry["source"]
    image, rest = src.split("[", 1)
    rows, cols = rest.split("]")[0].split(", ")
    t, b = (int(v) for v in rows.split(":"))
    l, r = (int(v) for v in cols.split(":"))
    img = read_image(kodak / image)[t:b, l:r]
    if src.endswith("as gray"):
        img = ((img.astype(int).sum(axis=2) + 1) // 3).astype(np.uint8)
    data = codec.compress(img, codec=entry["codec"], quality=entry["quality"])
    assert hashlib.sha256(data).hexdigest() == entry["stream_sha256"]
