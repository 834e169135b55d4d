"""Every conformance stream must decode to exactly the recorded pixels."""

import hashlib
import json
from pathlib import Path

import pytest

import codec

HERE = Path(__file__).resolve().parents[2] / "bitstreams" / "conformance"
MANIFEST = json.loads((HERE / "manifest.json").read_text())


def test_every_shipped_codec_has_streams():
    for spec in codec.codecs():
        entries = [m for m in MANIFEST.values() if m["codec"] == spec.name]
        if spec.kind == "lossless":  # no quality levels: one image and a set
            assert {tuple(m["shape"])[:-3] for m in entries} >= {(), (299,)}, spec.name
        else:
            assert len({m["quality"] for m in entries}) >= 2, spec.name


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
    """The encoder is deterministic too: re-encoding the source gives the same bytes, or, for a
    stream recorded in an older container version, the same header and sections rewritten in
    the current version."""
    import dataclasses
    import sys

    from codec.container import FORMAT_VERSION, read_container, write_container

    sys.path.insert(0, str(HERE))
    from make import encode_case

    entry = MANIFEST[name]
    data_dir = HERE.parents[2] / "shared" / "data"
    assert data_dir.is_dir(), "the conformance sources are crops of ../shared/data"
    data = encode_case(entry["source"], entry["codec"], entry["quality"], entry.get("options", {}), data_dir)
    recorded = read_container((HERE / entry["stream"]).read_bytes())
    if recorded.header.version == FORMAT_VERSION:
        assert hashlib.sha256(data).hexdigest() == entry["stream_sha256"]
    else:
        rewritten = dataclasses.replace(recorded.header, version=FORMAT_VERSION)
        assert data == write_container(rewritten, recorded.sections)
