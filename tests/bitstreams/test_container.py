import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codec.container import (CODEC_IDS, FORMAT_VERSION, HEADER_V1_SIZE, LAYOUT_RESERVED, MAX_DIMENSION,
                             MAX_FRAMES, MAX_PIXELS, MAX_SECTIONS, MAX_TOTAL_PIXELS, SRGB, VARINT_MAX,
                             ColourDescription, Header, container_overhead, decode_varint, encode_varint,
                             format_table_markdown, layout_bits_markdown, read_container, read_header,
                             stream_layout, write_container)
from codec.errors import CorruptStreamError
from codec.fuzzing import reseal, set_field

FORMAT_MD = Path(__file__).resolve().parents[2] / "bitstreams" / "FORMAT.md"
CONFORMANCE = FORMAT_MD.parent / "conformance" / "v1"


def header(**kw):
    base = dict(codec_id=1, model_id=1, weights_hash=b"\x01" * 8, width=5, height=7, channels=3, quality=2)
    base.update(kw)
    return Header(**base)


def overhead_matches(h, sections):
    blob = write_container(h, sections)
    assert container_overhead(h, [len(s) for s in sections]) == len(blob) - sum(map(len, sections))
    return blob


# -- varints -------------------------------------------------------------------------------
@pytest.mark.parametrize("value,size", [(0, 1), (1, 1), (127, 1), (128, 2), (16383, 2), (16384, 3),
                                        (2**21 - 1, 3), (2**21, 4), (2**28 - 1, 4), (2**28, 5), (VARINT_MAX, 5)])
def test_varint_round_trip_and_size(value, size):
    raw = encode_varint(value)
    assert len(raw) == size
    assert decode_varint(b"\xaa" + raw + b"\x01", 1) == (value, 1 + size)


@given(st.integers(0, VARINT_MAX))
def test_varint_round_trips(value):
    raw = encode_varint(value)
    assert decode_varint(raw) == (value, len(raw))


@pytest.mark.parametrize("value", [-1, VARINT_MAX + 1, 1.0, None])
def test_varint_refuses_what_it_cannot_code(value):
    with pytest.raises(ValueError):
        encode_varint(value)


@pytest.mark.parametrize("raw,match", [
    (b"\x80\x00", "non-minimal"), (b"\x81\x00", "non-minimal"), (b"\xff\x80\x00", "non-minimal"),
    (b"\x80\x80\x80\x80\x00", "non-minimal"), (b"\x80\x80\x80\x80\x80\x00", "over 5 bytes"),
    (b"\xff\xff\xff\xff\xff\x01", "over 5 bytes"), (b"\xff\xff\xff\xff\x10", "over 2\\^32 - 1"),
    (b"\x80\x80\x80\x80\x7f", "over 2\\^32 - 1"), (b"", "truncated"), (b"\x80", "truncated"),
    (b"\xff\xff\xff\xff", "truncated"),
])
def test_overlong_and_truncated_varints_are_refused(raw, match):
    with pytest.raises(CorruptStreamError, match=match):
        decode_varint(raw)


# -- version 2 round trips -----------------------------------------------------------------
@st.composite
def v2_headers(draw):
    width = draw(st.integers(1, MAX_DIMENSION))
    height = draw(st.integers(1, min(MAX_DIMENSION, MAX_PIXELS // width)))
    frames = draw(st.integers(1, min(MAX_FRAMES, MAX_TOTAL_PIXELS // (width * height))))
    has_quality = draw(st.booleans())
    u8 = st.integers(0, 255)
    return Header(
        codec_id=draw(st.integers(0, VARINT_MAX)), model_id=draw(st.integers(0, VARINT_MAX)),
        weights_hash=draw(st.binary(min_size=4, max_size=4)), width=width, height=height,
        channels=draw(st.sampled_from([1, 3])), quality=draw(u8) if has_quality else 0, has_quality=has_quality,
        frames=frames,
        frame_rate=draw(st.none() | st.tuples(st.integers(1, VARINT_MAX), st.integers(1, VARINT_MAX))),
        colour=draw(st.none() | st.builds(ColourDescription, u8, u8, u8, st.booleans())))


@given(h=v2_headers(), sections=st.lists(st.binary(max_size=300), max_size=6))
def test_v2_fields_round_trip_at_their_limits(h, sections):
    blob = overhead_matches(h, sections)
    c = read_container(blob)
    assert c.header == h and c.header.version == 2
    assert list(c.sections) == sections
    assert read_header(blob) == h


@pytest.mark.parametrize("kw", [
    dict(codec_id=0, model_id=0, width=1, height=1),
    dict(codec_id=VARINT_MAX, model_id=VARINT_MAX, width=MAX_DIMENSION, height=MAX_PIXELS // MAX_DIMENSION),
    dict(width=MAX_PIXELS // MAX_DIMENSION, height=MAX_DIMENSION, frames=MAX_TOTAL_PIXELS // MAX_PIXELS),
    dict(width=1 << 7, height=1 << 7, frames=MAX_FRAMES),  # 2^34 pixels in all
    dict(frames=2, frame_rate=(VARINT_MAX, VARINT_MAX), colour=ColourDescription(255, 255, 255, True)),
    dict(frames=1, frame_rate=(1, 1), colour=ColourDescription(0, 0, 0, False), quality=255),
    dict(has_quality=False, quality=0, channels=1),
])
def test_v2_extremes_round_trip(kw):
    h = header(**kw)
    for sections in ([], [b""], [b"", b""], [b"x" * 200, b"", b"yz"]):
        c = read_container(overhead_matches(h, sections))
        assert c.header == h and list(c.sections) == sections


def test_frames_rate_and_colour_round_trip():
    video = header(frames=250, frame_rate=(30000, 1001), colour=SRGB)
    image_set = header(channels=1, quality=0, has_quality=False, frames=299)
    one_timed_frame = header(frame_rate=(25, 1))
    for h in (video, image_set, one_timed_frame):
        got = read_container(write_container(h, [b"abc"])).header
        assert got == h
        assert (got.frames, got.frame_rate, got.colour) == (h.frames, h.frame_rate, h.colour)
    assert read_header(write_container(image_set, [])).quality == 0
    assert header(frame_rate=[24, 1]).frame_rate == (24, 1)


def test_header_constructor_is_backward_compatible():
    h = Header(1, 2, bytes(range(8)), 640, 480, 3, 4)
    assert (h.version, h.frames, h.frame_rate, h.colour, h.has_quality, h.bit_depth) == (2, 1, None, None, True, 8)
    assert h.weights_hash == bytes(range(4))  # a version 2 header keeps the first 4 bytes of the hash
    assert Header(1, 2, bytes(range(8)), 640, 480, 3, 4, version=1).weights_hash == bytes(range(8))


def test_v2_stream_bytes_are_pinned():
    # changing these bytes changes every stream: a new FORMAT_VERSION is needed when this fails
    h = Header(codec_id=2, model_id=1, weights_hash=bytes.fromhex("a1b2c3d4"), width=28, height=28, channels=1,
               quality=0, has_quality=False)
    blob = write_container(h, [b"\x07" * 3])
    assert blob[:-4].hex() == "4c434443" "02" "02" "01" "a1b2c3d4" "1c" "1c" "00" "01" "070707"
    assert container_overhead(h, [3]) == 19
    h = header(codec_id=1, model_id=2, width=768, height=512, quality=3, frames=300, frame_rate=(30, 1),
               colour=SRGB)
    blob = write_container(h, [b"\x01" * 4, b"\x02" * 200, b"\x03"])
    assert blob[:-4 - 205].hex() == ("4c434443" "02" "01" "02" "01010101" "8006" "8004" "1f" "03" "ac02" "1e" "01"
                                     "010d0001" "03" "04" "c801")


def test_overhead_of_typical_streams():
    mnist = Header(codec_id=2, model_id=1, weights_hash=bytes(4), width=28, height=28, channels=1, quality=0,
                   has_quality=False)
    assert container_overhead(mnist, [180]) == 19
    kodak = Header(codec_id=1, model_id=2, weights_hash=bytes(4), width=768, height=512, channels=3, quality=3)
    assert container_overhead(kodak, [4, 1000, 40000]) == 25
    assert container_overhead(Header(**{**kodak.__dict__, "version": 1, "weights_hash": bytes(8)}),
                              [4, 1000, 40000]) == 31 + 3 * 4 + 4


# -- version 1 (read only, written on request) ---------------------------------------------
@given(codec_id=st.integers(0, 2**16 - 1), model_id=st.integers(0, 2**16 - 1),
       width=st.integers(1, MAX_DIMENSION), height=st.integers(1, 256), channels=st.sampled_from([1, 3]),
       quality=st.integers(0, 255), weights_hash=st.binary(min_size=8, max_size=8),
       sections=st.lists(st.binary(max_size=50), max_size=5))
def test_v1_fields_round_trip_at_their_limits(codec_id, model_id, width, height, channels, quality, weights_hash,
                                              sections):
    h = header(codec_id=codec_id, model_id=model_id, width=width, height=height, channels=channels,
               quality=quality, weights_hash=weights_hash, version=1)
    blob = overhead_matches(h, sections)
    c = read_container(blob)
    assert c.header == h and c.header.version == 1
    assert (c.header.frames, c.header.frame_rate, c.header.colour, c.header.has_quality) == (1, None, None, True)
    assert list(c.sections) == sections
    assert len(blob) == HEADER_V1_SIZE + 4 * len(sections) + sum(map(len, sections)) + 4


def test_v1_conformance_streams_still_parse():
    streams = sorted(CONFORMANCE.glob("*.lcd"))
    assert streams
    for path in streams:
        c = read_container(path.read_bytes())
        assert c.header.version == 1 and len(c.header.weights_hash) == 8
        assert c.header.frames == 1 and c.header.frame_rate is None and c.header.colour is None


@pytest.mark.parametrize("kw", [dict(frames=2), dict(frame_rate=(1, 1)), dict(colour=SRGB),
                                dict(has_quality=False, quality=0), dict(weights_hash=b"\0" * 4)])
def test_v1_cannot_carry_version_2_fields(kw):
    with pytest.raises(ValueError):
        write_container(header(version=1, **kw), [])


@pytest.mark.parametrize("kw", [dict(channels=2), dict(bit_depth=10), dict(flags=1), dict(weights_hash=b"\0" * 3),
                                dict(has_quality=False, quality=3), dict(codec_id=VARINT_MAX + 1),
                                dict(model_id=-1), dict(quality=256), dict(frame_rate=(2**32, 1)),
                                dict(colour=ColourDescription(256, 1, 1)), dict(version=3), dict(version=0)])
def test_writer_refuses_what_the_version_cannot_represent(kw):
    with pytest.raises(ValueError):
        write_container(header(**kw), [])
    with pytest.raises(ValueError):
        container_overhead(header(**kw), [])


def test_writer_refuses_too_many_sections():
    with pytest.raises(ValueError):
        write_container(header(), [b""] * (MAX_SECTIONS + 1))


# -- refusals ------------------------------------------------------------------------------
def test_format_md_documents_the_field_tables():
    text = FORMAT_MD.read_text()
    assert format_table_markdown() in text
    assert format_table_markdown(2) in text
    assert layout_bits_markdown() in text
    assert "## Version 1 (read only)" in text
    assert format_table_markdown(1) in text.split("## Version 1 (read only)", 1)[1]
    for name, wire_id in CODEC_IDS.items():
        assert f"| {wire_id} | `{name}` |" in text
    assert f"This is format version {FORMAT_VERSION}." in text


STREAMS = {
    "v2": (header(), [b"abc", b"defgh"]),
    "v2-all-fields": (header(frames=3, frame_rate=(30000, 1001), colour=SRGB, width=300, height=200),
                      [b"abc", b"", b"x" * 130]),
    "v2-no-sections": (header(has_quality=False, quality=0), []),
    "v2-one-empty-section": (header(), [b""]),
    "v1": (header(version=1), [b"abc", b"defgh"]),
}


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_every_corruption_is_refused(name):
    blob = write_container(*STREAMS[name])
    for i in range(len(blob)):
        for bit in (0, 7):
            bad = bytearray(blob)
            bad[i] ^= 1 << bit
            with pytest.raises(CorruptStreamError):
                read_container(bytes(bad))
    with pytest.raises(CorruptStreamError):
        read_container(blob + b"\0")


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_truncation_at_every_byte_is_refused(name):
    blob = write_container(*STREAMS[name])
    header_end = stream_layout(blob).fields[-1].end
    for n in range(len(blob)):
        with pytest.raises(CorruptStreamError):
            read_container(blob[:n])
        if n < header_end:
            with pytest.raises(CorruptStreamError):
                read_header(blob[:n])
        else:
            assert read_header(blob[:n]) == STREAMS[name][0]


def test_non_minimal_varint_in_a_stream_is_refused():
    blob = write_container(header(width=5), [b"abc"])
    for raw in (b"\x85\x00", b"\x85\x80\x00", b"\x85\x80\x80\x80\x80\x00"):
        with pytest.raises(CorruptStreamError, match="width"):
            read_header(reseal(set_field(blob, "width", raw)))
    blob = write_container(header(), [b"a" * 5, b"bc"])
    span = stream_layout(blob).lengths[0]
    bad = reseal(blob[:span.start] + b"\x85\x00" + blob[span.end:])
    with pytest.raises(CorruptStreamError, match="non-minimal varint in section table"):
        read_container(bad)


@pytest.mark.parametrize("bit", [i for i in range(8) if LAYOUT_RESERVED >> i & 1])
def test_reserved_layout_bits_are_refused(bit):
    blob = write_container(header(), [b"abc"])
    layout = next(s for s in stream_layout(blob).fields if s.name == "layout")
    bad = reseal(set_field(blob, "layout", layout.value | 1 << bit))
    with pytest.raises(CorruptStreamError, match="reserved layout bits"):
        read_header(bad)
    with pytest.raises(CorruptStreamError, match="reserved layout bits"):
        read_container(bad)


def test_newer_version_is_refused_clearly():
    blob = bytearray(write_container(header(), []))
    blob[4] = FORMAT_VERSION + 1
    with pytest.raises(CorruptStreamError, match="upgrade"):
        read_header(bytes(blob))
    blob[4] = 0
    with pytest.raises(CorruptStreamError, match="reads versions 1 and 2$"):
        read_header(bytes(blob))


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("kw,match", [
    (dict(width=0), "width|size"), (dict(height=0), "height|size"), (dict(width=MAX_DIMENSION + 1), "width|size"),
    (dict(width=1 << 15, height=(1 << 13) + 1), "invalid size"),
])
def test_bad_geometry_is_refused_before_allocation(version, kw, match):
    h = header(version=version, **kw)
    with pytest.raises(CorruptStreamError, match=match):
        read_header(write_container(h, []))


@pytest.mark.parametrize("kw,match", [
    (dict(frames=0), "frames 0"), (dict(frames=MAX_FRAMES + 1), "frames"),
    (dict(width=1 << 8, height=1 << 7, frames=MAX_FRAMES), "more than 2\\^34 pixels"),
    (dict(frame_rate=(0, 1)), "rate_num 0"), (dict(frame_rate=(1, 0)), "rate_den 0"),
    (dict(colour=ColourDescription(1, 13, 0, 2)), "full_range 2"),
])
def test_bad_v2_values_are_refused(kw, match):
    blob = write_container(header(**kw), [b"abc"])
    with pytest.raises(CorruptStreamError, match=match):
        read_header(blob)
    with pytest.raises(CorruptStreamError, match=match):
        read_container(blob)


def test_too_many_sections_and_stray_bytes_are_refused():
    blob = write_container(header(), [])
    with pytest.raises(CorruptStreamError, match="too many sections"):
        read_header(reseal(set_field(blob, "section_count", MAX_SECTIONS + 1)))
    # no sections: nothing may stand between the header and the CRC
    with pytest.raises(CorruptStreamError, match="implies"):
        read_container(reseal(blob[:-4] + b"x" + bytes(4)))
    # the lengths given add up to more than the stream holds
    blob = write_container(header(), [b"abc", b"de"])
    bad = reseal(set_field(blob, "section_count", 3))
    with pytest.raises(CorruptStreamError):
        read_container(bad)
    span = stream_layout(blob).lengths[0]
    with pytest.raises(CorruptStreamError, match="truncated"):
        read_container(reseal(blob[:span.start] + encode_varint(100) + blob[span.end:]))


def test_v1_header_size_is_stable():
    # the version 1 layout is frozen: it is read as it always was
    assert HEADER_V1_SIZE == 31
    assert struct.calcsize("<4sBHH8sIIBBBBH") == HEADER_V1_SIZE
