"""Every conformance stream, of every container version, must decode to exactly the
recorded pixels; the current version's streams must also be what the encoder writes today."""

import hashlib
import json
from pathlib import Path

import pytest

import codec

HERE = Path(__file__).resolve().parents[2] / "bitstreams" / "conformance"
VERSIONS = {v: json.loads((HERE / v / "manifest.json").read_text()) for v in ("v1", "v2")}
MANIFEST = VERSIONS["v2"]  # the current version: re-encoded below
EVERY = sorted((v, name) for v, m in VERSIONS.items() for name in m)


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_every_shipped_codec_has_streams(version):
    manifest = VERSIONS[version]
    for spec in codec.codecs():
        entries = [m for m in manifest.values() if m["codec"] == spec.name]
        if manifest is not MANIFEST and not entries:
            continue  # a frozen older version holds the codecs of its time
        if not spec.qualities:  # no quality levels: one image, and a set of more than one chunk of 256
            counts = {tuple(m["shape"])[:-3] for m in entries}
            assert () in counts and any(c and c[0] > 256 for c in counts), spec.name
        else:
            assert len({m["quality"] for m in entries}) >= 2, spec.name


def test_streams_are_of_their_version():
    for version, manifest in VERSIONS.items():
        for entry in manifest.values():
            data = (HERE / version / entry["stream"]).read_bytes()
            assert codec.info(data)["format_version"] == int(version[1:])


@pytest.mark.parametrize("version,name", EVERY)
def test_conformance_stream_decodes_exactly(version, name):
    entry = VERSIONS[version][name]
    data = (HERE / version / entry["stream"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["stream_sha256"]
    pixels = codec.decompress(data)
    assert list(pixels.shape) == entry["shape"]
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == entry["decoded_sha256"]


#: the set encoder is one code path for both circuits; re-encoding the larger model's set
#: (half a minute) would test nothing that pc-mnist-set and pc-fashion-mnist-one do not
RE_ENCODED = sorted(n for n in MANIFEST if n != "pc-fashion-mnist-set")


@pytest.mark.parametrize("name", RE_ENCODED)
def test_encoder_still_writes_the_same_stream(name, shared_data):
    """The encoder is deterministic too: re-encoding the source gives the same bytes."""
    import sys

    sys.path.insert(0, str(HERE))
    from make import encode_case

    entry = MANIFEST[name]
    data_dir = shared_data("kodak").parent  # the sources are crops of ../shared/data
    data = encode_case(entry["source"], entry["codec"], entry["quality"], entry.get("options", {}), data_dir)
    assert hashlib.sha256(data).hexdigest() == entry["stream_sha256"]
