import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codec.container import (CODEC_IDS, FORMAT_VERSION, HEADER_SIZE, MAX_DIMENSION, Header, format_table_markdown,
                             read_container, read_header, write_container)
from codec.errors import CorruptStreamError

FORMAT_MD = Path(__file__).resolve().parents[2] / "bitstreams" / "FORMAT.md"


def header(**kw):
    base = dict(codec_id=1, model_id=1, weights_hash=b"\x01" * 8, width=5, height=7, channels=3, quality=2)
    base.update(kw)
    return Header(**base)


@given(codec_id=st.integers(0, 2**16 - 1), model_id=st.integers(0, 2**16 - 1),
       width=st.integers(1, MAX_DIMENSION), height=st.integers(1, 256), channels=st.sampled_from([1, 3]),
       quality=st.integers(0, 255), weights_hash=st.binary(min_size=8, max_size=8),
       sections=st.lists(st.binary(max_size=50), max_size=5))
def test_fields_round_trip_at_their_limits(codec_id, model_id, width, height, channels, quality, weights_hash,
                                          sections):
    h = header(codec_id=codec_id, model_id=model_id, width=width, height=height, channels=channels,
               quality=quality, weights_hash=weights_hash)
    c = read_container(write_container(h, sections))
    assert c.header == h
    assert list(c.sections) == sections


def test_format_md_documents_the_field_table():
    text = FORMAT_MD.read_text()
    assert format_table_markdown() in text
    for name, wire_id in CODEC_IDS.items():
        assert f"| {wire_id} | `{name}` |" in text
    assert f"format version {FORMAT_VERSION}" in text.lower() or f"version {FORMAT_VERSION}" in text


def test_every_corruption_is_refused():
    blob = write_container(header(), [b"abc", b"defgh"])
    for i in range(len(blob)):
        for bit in (0, 7):
            bad = bytearray(blob)
            bad[i] ^= 1 << bit
            with pytest.raises(CorruptStreamError):
                read_container(bytes(bad))
    for n in range(len(blob)):
        with pytest.raises(CorruptStreamError):
            read_container(blob[:n])
    with pytest.raises(CorruptStreamError):
        read_container(blob + b"\0")


def test_newer_version_is_refused_clearly():
    blob = bytearray(write_container(header(), []))
    blob[4] = FORMAT_VERSION + 1
    with pytest.raises(CorruptStreamError, match="upgrade"):
        read_header(bytes(blob))


@pytest.mark.parametrize("field,value", [("width", 0), ("height", 0), ("width", MAX_DIMENSION + 1)])
def test_bad_geometry_is_refused_before_allocation(field, value):
    h = header(**{field: value})
    with pytest.raises(CorruptStreamError):
        read_header(write_container(h, []))


def test_header_size_is_stable():
    # changing the header layout changes every stream: bump FORMAT_VERSION when this fails
    assert HEADER_SIZE == 31
    assert struct.calcsize("<4sBHH8sIIBBBBH") == HEADER_SIZE
