"""The lcodec container, written once as data.

Version 2 is what lcodec writes; version 1 is still read (and written only for a header that
asks for it, so tests and fuzzers can build such streams). ``HEADER_V2`` and ``LAYOUT_BITS``
are the normative tables of version 2 and ``HEADER_V1`` that of version 1; the reader and the
writer below walk these tables, and ``bitstreams/FORMAT.md`` carries the same tables
(``format_table_markdown``, ``layout_bits_markdown``; a test checks that they agree).

Version 2::

    header (fields of HEADER_V2) | lengths of all sections but the last (varint each)
        | sections | CRC-32 (u32 LE)

Version 1::

    header (31 bytes, fixed) | section lengths (u32 LE each) | sections | CRC-32 (u32 LE)

A varint is unsigned LEB128 of a value 0 ..= 2^32 - 1: at most 5 bytes, minimal (a
multi-byte varint never ends in a zero byte). The CRC-32 (ISO-HDLC, as zlib computes it)
covers every byte before it.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from .errors import CorruptStreamError

MAGIC = b"LCDC"
#: the version written by default
FORMAT_VERSION = 2
#: the versions read
READ_VERSIONS = (1, 2)

#: wire ids of the codecs; never reuse or renumber an id
CODEC_IDS: dict[str, int] = {
    "hyperprior": 1,
    "pc-mnist": 2,
    "pc-fashion-mnist": 3,
    "overfit": 4,
    "mlicv2": 5,
    "s2lic": 6,
}

#: limits checked before anything is allocated
MAX_SECTIONS = 4096
MAX_DIMENSION = 1 << 20
MAX_PIXELS = 1 << 28  # width * height
MAX_FRAMES = 1 << 20
MAX_TOTAL_PIXELS = 1 << 34  # width * height * frames

#: varints carry 0 ..= 2^32 - 1 in at most 5 bytes
VARINT_MAX = (1 << 32) - 1
VARINT_MAX_BYTES = 5

#: bytes of the weights file's SHA-256 that each version stores
WEIGHTS_HASH_SIZE = {1: 8, 2: 4}

CRC_SIZE = 4


# -- varints -------------------------------------------------------------------------------
def encode_varint(value: int) -> bytes:
    """Unsigned LEB128, minimal, of ``0 <= value <= 2^32 - 1``."""
    if not isinstance(value, int) or not 0 <= value <= VARINT_MAX:
        raise ValueError(f"varint value {value!r} is outside 0 ..= 2^32 - 1")
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data: bytes, pos: int = 0, what: str = "varint") -> tuple[int, int]:
    """The varint at ``data[pos:]`` and the position after it.

    Raises :class:`CorruptStreamError` (naming ``what``) for a truncated varint, one over 5
    bytes, a non-minimal one, or a value over 2^32 - 1.
    """
    value = 0
    for i in range(VARINT_MAX_BYTES):
        if pos + i >= len(data):
            raise CorruptStreamError(f"truncated stream: {what} incomplete")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if i and not byte:
                raise CorruptStreamError(f"stream has a non-minimal varint in {what}")
            if value > VARINT_MAX:
                raise CorruptStreamError(f"stream has a varint over 2^32 - 1 in {what}")
            return value, pos + i + 1
    raise CorruptStreamError(f"stream has a varint over {VARINT_MAX_BYTES} bytes in {what}")


# -- encodings of a field ------------------------------------------------------------------
class Encoding:
    label: str  # as FORMAT.md prints it
    kind: str  # "bytes", "u8", "u16", "u32" or "varint"
    natural: tuple[int, int] | None  # every value the encoding can carry (None: bytes)

    def encode(self, value, name: str) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes, pos: int, name: str) -> tuple[Any, int]:
        raise NotImplementedError


class Fixed(Encoding):
    """A little-endian fixed-width integer, or a fixed number of bytes."""

    def __init__(self, fmt: str, label: str, kind: str):
        self.fmt, self.label, self.kind = fmt, label, kind
        self.size = struct.calcsize("<" + fmt)
        self.natural = None if kind == "bytes" else (0, (1 << (8 * self.size)) - 1)

    def encode(self, value, name: str) -> bytes:
        if self.kind == "bytes":
            if not isinstance(value, (bytes, bytearray)) or len(value) != self.size:
                raise ValueError(f"{name} must be {self.size} bytes")
        elif not isinstance(value, int) or not 0 <= value < 1 << (8 * self.size):
            raise ValueError(f"{name} = {value!r} does not fit a {self.label}")
        return struct.pack("<" + self.fmt, value)

    def decode(self, data: bytes, pos: int, name: str) -> tuple[Any, int]:
        if pos + self.size > len(data):
            raise CorruptStreamError("truncated stream: header incomplete")
        return struct.unpack_from("<" + self.fmt, data, pos)[0], pos + self.size


class Varint(Encoding):
    label, kind, natural = "varint", "varint", (0, VARINT_MAX)

    def encode(self, value, name: str) -> bytes:
        try:
            return encode_varint(value)
        except ValueError:
            raise ValueError(f"{name} = {value!r} does not fit a varint (0 ..= 2^32 - 1)") from None

    def decode(self, data: bytes, pos: int, name: str) -> tuple[Any, int]:
        try:
            return decode_varint(data, pos, f"header field {name}")
        except CorruptStreamError as exc:
            if str(exc).startswith("truncated"):
                raise CorruptStreamError("truncated stream: header incomplete") from None
            raise


BYTES4, BYTES8 = Fixed("4s", "4 bytes", "bytes"), Fixed("8s", "8 bytes", "bytes")
U8, U16, U32 = Fixed("B", "u8", "u8"), Fixed("H", "u16", "u16"), Fixed("I", "u32", "u32")
VARINT = Varint()


@dataclass(frozen=True)
class Field:
    """One header field: how it is coded, when it is present, what values a reader accepts."""

    name: str
    encoding: Encoding
    description: str
    present: str | None = None  # the layout bit (by name) that must be set; None: always present
    values: tuple[int, int] | None = None  # accepted range, inclusive; None: all the encoding carries
    refusal: str = "stream declares {name} {value}, outside {lo} ..= {hi}"  # reader's message

    @property
    def size(self) -> int:  # fixed-width fields only
        return self.encoding.size  # type: ignore[attr-defined]

    @property
    def fmt(self) -> str:  # fixed-width fields only
        return self.encoding.fmt  # type: ignore[attr-defined]


@dataclass(frozen=True)
class LayoutBit:
    bit: int
    name: str
    description: str


#: version 2, the bits of ``layout``; the bits not listed are reserved and must be 0
LAYOUT_BITS: tuple[LayoutBit, ...] = (
    LayoutBit(0, "channels", "0: 1 channel (grayscale); 1: 3 channels (RGB)"),
    LayoutBit(1, "quality", "`quality` is present; absent: the codec has no quality levels (read as 0)"),
    LayoutBit(2, "frames", "`frames` is present; absent: one image"),
    LayoutBit(3, "rate", "`rate_num` and `rate_den` are present: the frames are timed (video); "
                         "absent: untimed (one image, or a set of images)"),
    LayoutBit(4, "colour", "the four colour fields are present; absent: colour not signalled"),
)
_BIT = {b.name: 1 << b.bit for b in LAYOUT_BITS}
LAYOUT_RESERVED = 0xFF & ~sum(_BIT.values())
assert LAYOUT_RESERVED == 0xFF & -(1 << len(LAYOUT_BITS)), "reserved bits are the high ones (layout's range check)"

#: version 2, the normative header table: fields in stream order
HEADER_V2: tuple[Field, ...] = (
    Field("magic", BYTES4, "the bytes `LCDC`"),
    Field("version", U8, "format version", values=(2, 2)),
    Field("codec_id", VARINT, "wire id of the codec (table below)"),
    Field("model_id", VARINT, "the codec's model architecture; the codec defines its meaning"),
    Field("weights_hash", BYTES4, "first 4 bytes of the SHA-256 of the weights file used (all zero: none)"),
    Field("width", VARINT, "image width in pixels", values=(1, MAX_DIMENSION)),
    Field("height", VARINT, "image height in pixels", values=(1, MAX_DIMENSION)),
    Field("layout", U8, "channel count and which optional fields follow (bits below)",
          values=(0, 0xFF & ~LAYOUT_RESERVED), refusal="stream sets reserved layout bits ({value:#04x})"),
    Field("quality", U8, "quality level the codec coded with", present="quality"),
    Field("frames", VARINT, "number of frames (video) or images (image set)", present="frames",
          values=(2, MAX_FRAMES)),
    Field("rate_num", VARINT, "frame rate numerator: `rate_num` frames per `rate_den` seconds", present="rate",
          values=(1, VARINT_MAX)),
    Field("rate_den", VARINT, "frame rate denominator", present="rate", values=(1, VARINT_MAX)),
    Field("colour_primaries", U8, "ITU-T H.273 `colour_primaries`", present="colour"),
    Field("transfer_characteristics", U8, "ITU-T H.273 `transfer_characteristics`", present="colour"),
    Field("matrix_coefficients", U8, "ITU-T H.273 `matrix_coefficients`", present="colour"),
    Field("full_range", U8, "ITU-T H.273 `video_full_range_flag`", present="colour", values=(0, 1)),
    Field("section_count", VARINT, "number of sections", values=(0, MAX_SECTIONS),
          refusal="stream declares too many sections ({value})"),
)

#: version 2, what follows the header (documentation rows of the same table; the code below
#: reads and writes them)
TRAILER_V2: tuple[tuple[str, str, str, str], ...] = (
    ("section lengths", "varint each", "`section_count` - 1 of them",
     "length in bytes of every section but the last; the last one's is implied"),
    ("sections", "bytes", "", "the sections, back to back"),
    ("crc", "u32", "", "CRC-32 of every byte before it (as zlib's `crc32`)"),
)

#: version 1 (read only), the fixed header: fields in stream order
HEADER_V1: tuple[Field, ...] = (
    Field("magic", BYTES4, "the bytes `LCDC`"),
    Field("version", U8, "format version, 1"),
    Field("codec_id", U16, "wire id of the codec (table below)"),
    Field("model_id", U16, "the codec's model architecture; the codec defines its meaning"),
    Field("weights_hash", BYTES8, "first 8 bytes of the SHA-256 of the weights file used"),
    Field("width", U32, "image width in pixels, 1 ..= 2^20"),
    Field("height", U32, "image height in pixels, 1 ..= 2^20"),
    Field("channels", U8, "1 (grayscale) or 3 (RGB)"),
    Field("bit_depth", U8, "bits per sample; 8"),
    Field("quality", U8, "quality level the codec coded with"),
    Field("flags", U8, "reserved, 0"),
    Field("section_count", U16, "number of sections, 0 ..= 4096"),
)
_HEADER_V1_FMT = "<" + "".join(f.fmt for f in HEADER_V1)
HEADER_V1_SIZE = struct.calcsize(_HEADER_V1_FMT)


# -- headers -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColourDescription:
    """Colour code points of ITU-T H.273 (ISO/IEC 23091-2); sRGB is ``SRGB``."""

    colour_primaries: int
    transfer_characteristics: int
    matrix_coefficients: int
    full_range: bool = True


#: sRGB: BT.709 primaries, the IEC 61966-2-1 transfer function, RGB (identity matrix), full range
SRGB = ColourDescription(1, 13, 0, True)


@dataclass(frozen=True)
class Header:
    """A stream's header, as read or to be written (``version`` picks the layout).

    ``weights_hash`` is a prefix of the weights file's SHA-256 (all zero: no weights file);
    a longer prefix than the version stores (4 bytes in version 2, 8 in version 1) is cut
    to that length, so a codec's 8-byte short hash may be passed as is. ``quality`` reads
    as 0 when ``has_quality`` is false. ``frames`` counts frames or images (1: one image);
    ``frame_rate`` is (numerator, denominator) for timed frames, None for untimed ones.
    ``frames``, ``frame_rate``, ``colour`` and ``has_quality=False`` need version 2;
    ``bit_depth`` is 8 and ``flags`` 0 in version 2 (neither is stored).
    """

    codec_id: int
    model_id: int
    weights_hash: bytes
    width: int
    height: int
    channels: int
    quality: int
    bit_depth: int = 8
    flags: int = 0
    version: int = FORMAT_VERSION
    frames: int = 1
    frame_rate: tuple[int, int] | None = None
    colour: ColourDescription | None = None
    has_quality: bool = True

    def __post_init__(self) -> None:
        size = WEIGHTS_HASH_SIZE.get(self.version)
        if size is not None and isinstance(self.weights_hash, (bytes, bytearray)) and len(self.weights_hash) > size:
            object.__setattr__(self, "weights_hash", bytes(self.weights_hash[:size]))
        if self.frame_rate is not None and not isinstance(self.frame_rate, tuple):
            object.__setattr__(self, "frame_rate", tuple(self.frame_rate))


@dataclass(frozen=True)
class Container:
    header: Header
    sections: tuple[bytes, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class FieldSpan:
    """Where a field lies in a stream (for tools that edit streams, such as the fuzzers)."""

    name: str
    start: int
    end: int
    kind: str  # as Encoding.kind
    value: object


@dataclass(frozen=True)
class StreamLayout:
    """The byte layout of a well-formed stream: header fields, length entries, sections."""

    version: int
    fields: tuple[FieldSpan, ...]
    lengths: tuple[FieldSpan, ...]
    sections: tuple[tuple[int, int], ...]


def _v2_wire_values(header: Header, section_count: int) -> dict[str, Any]:
    """The values of the HEADER_V2 fields for ``header`` (what cannot be coded is a ValueError)."""
    if header.channels not in (1, 3):
        raise ValueError(f"a version 2 stream has 1 or 3 channels, not {header.channels}")
    if header.bit_depth != 8:
        raise ValueError(f"a version 2 stream has bit depth 8, not {header.bit_depth}")
    if header.flags != 0:
        raise ValueError("a version 2 stream has no flags")
    if not header.has_quality and header.quality != 0:
        raise ValueError("a header without quality must have quality 0")
    layout = (_BIT["channels"] if header.channels == 3 else 0) | (_BIT["quality"] if header.has_quality else 0)
    values: dict[str, Any] = {
        "magic": MAGIC, "version": 2, "codec_id": header.codec_id, "model_id": header.model_id,
        "weights_hash": header.weights_hash, "width": header.width, "height": header.height,
        "quality": header.quality, "section_count": section_count,
    }
    if header.frames != 1:
        layout |= _BIT["frames"]
        values["frames"] = header.frames
    if header.frame_rate is not None:
        layout |= _BIT["rate"]
        values["rate_num"], values["rate_den"] = header.frame_rate
    if header.colour is not None:
        layout |= _BIT["colour"]
        c = header.colour
        values.update(colour_primaries=c.colour_primaries, transfer_characteristics=c.transfer_characteristics,
                      matrix_coefficients=c.matrix_coefficients, full_range=int(c.full_range))
    values["layout"] = layout
    return values


def _present(f: Field, layout: int) -> bool:
    return f.present is None or bool(layout & _BIT[f.present])


def _frame(header: Header, lengths: list[int]) -> bytes:
    """Header and section table: every byte a stream has before its sections."""
    if len(lengths) > MAX_SECTIONS:
        raise ValueError("too many sections")
    if header.version == 2:
        values = _v2_wire_values(header, len(lengths))
        layout = values["layout"]
        out = bytearray()
        for f in HEADER_V2:
            if _present(f, layout):
                out += f.encoding.encode(values[f.name], f.name)
        for n in lengths[:-1]:
            out += VARINT.encode(n, "section length")
        return bytes(out)
    if header.version == 1:
        if header.frames != 1 or header.frame_rate is not None or header.colour is not None or not header.has_quality:
            raise ValueError("a version 1 stream has no frames, frame rate or colour fields and always a quality")
        if len(header.weights_hash) != WEIGHTS_HASH_SIZE[1]:
            raise ValueError("weights_hash must be 8 bytes")
        values = {
            "magic": MAGIC, "version": 1, "codec_id": header.codec_id, "model_id": header.model_id,
            "weights_hash": header.weights_hash, "width": header.width, "height": header.height,
            "channels": header.channels, "bit_depth": header.bit_depth, "quality": header.quality,
            "flags": header.flags, "section_count": len(lengths),
        }
        head = struct.pack(_HEADER_V1_FMT, *(values[f.name] for f in HEADER_V1))
        return head + struct.pack(f"<{len(lengths)}I", *lengths)
    raise ValueError(f"cannot write format version {header.version} (versions {READ_VERSIONS})")


def write_container(header: Header, sections: list[bytes] | tuple[bytes, ...]) -> bytes:
    """The stream of ``header`` and ``sections``, in the header's ``version``.

    The writer refuses (ValueError) only what the version cannot represent; the limits that
    ``read_header`` enforces (sizes, frame counts) are the caller's to respect, so that tests
    can build streams a reader must refuse.
    """
    body = _frame(header, [len(s) for s in sections]) + b"".join(sections)
    return body + struct.pack("<I", zlib.crc32(body))


def container_overhead(header: Header, section_lengths: list[int]) -> int:
    """The bytes the container adds around sections of these lengths (header, table, CRC):
    ``len(write_container(header, sections)) - sum(map(len, sections))``."""
    return len(_frame(header, list(section_lengths))) + CRC_SIZE


# -- reading -------------------------------------------------------------------------------
def _check_version(data: bytes) -> int:
    if len(data) < len(MAGIC) or data[:len(MAGIC)] != MAGIC:
        raise CorruptStreamError("not an lcodec stream (bad magic)")
    if len(data) <= len(MAGIC):
        raise CorruptStreamError("truncated stream: header incomplete")
    version = data[len(MAGIC)]
    if version not in READ_VERSIONS:
        raise CorruptStreamError(
            f"stream is format version {version}; this lcodec reads versions "
            + " and ".join(map(str, READ_VERSIONS))
            + (" (upgrade lcodec)" if version > max(READ_VERSIONS) else ""))
    return version


def _parse_header_v1(data: bytes) -> tuple[Header, int, list[FieldSpan]]:
    if len(data) < HEADER_V1_SIZE:
        raise CorruptStreamError("truncated stream: header incomplete")
    raw = dict(zip((f.name for f in HEADER_V1), struct.unpack_from(_HEADER_V1_FMT, data)))
    w, h = raw["width"], raw["height"]
    if not (1 <= w <= MAX_DIMENSION and 1 <= h <= MAX_DIMENSION) or w * h > MAX_PIXELS:
        raise CorruptStreamError(f"stream declares an invalid size {w}x{h}")
    if raw["channels"] not in (1, 3):
        raise CorruptStreamError(f"stream declares {raw['channels']} channels")
    if raw["bit_depth"] != 8:
        raise CorruptStreamError(f"stream declares bit depth {raw['bit_depth']}")
    if raw["flags"] != 0:
        raise CorruptStreamError("stream sets reserved flags")
    if raw["section_count"] > MAX_SECTIONS:
        raise CorruptStreamError("stream declares too many sections")
    spans, pos = [], 0
    for f in HEADER_V1:
        spans.append(FieldSpan(f.name, pos, pos + f.size, f.encoding.kind, raw[f.name]))
        pos += f.size
    header = Header(codec_id=raw["codec_id"], model_id=raw["model_id"], weights_hash=raw["weights_hash"],
                    width=w, height=h, channels=raw["channels"], quality=raw["quality"],
                    bit_depth=raw["bit_depth"], flags=raw["flags"], version=1)
    return header, raw["section_count"], spans


def _parse_header_v2(data: bytes) -> tuple[Header, int, list[FieldSpan], int]:
    raw: dict[str, Any] = {}
    spans, pos, layout = [], 0, 0
    for f in HEADER_V2:
        if not _present(f, layout):
            continue
        value, end = f.encoding.decode(data, pos, f.name)
        lo, hi = f.values or f.encoding.natural or (None, None)
        if lo is not None and not lo <= value <= hi:
            raise CorruptStreamError(f.refusal.format(name=f.name, value=value, lo=lo, hi=hi))
        if f.name == "height" and raw["width"] * value > MAX_PIXELS:
            raise CorruptStreamError(f"stream declares an invalid size {raw['width']}x{value}")
        if f.name == "frames" and raw["width"] * raw["height"] * value > MAX_TOTAL_PIXELS:
            raise CorruptStreamError(f"stream declares {value} frames of {raw['width']}x{raw['height']}, "
                                     "more than 2^34 pixels in all")
        if f.name == "layout":
            layout = value
        raw[f.name] = value
        spans.append(FieldSpan(f.name, pos, end, f.encoding.kind, value))
        pos = end
    colour = None
    if layout & _BIT["colour"]:
        colour = ColourDescription(raw["colour_primaries"], raw["transfer_characteristics"],
                                   raw["matrix_coefficients"], bool(raw["full_range"]))
    header = Header(
        codec_id=raw["codec_id"], model_id=raw["model_id"], weights_hash=raw["weights_hash"],
        width=raw["width"], height=raw["height"], channels=3 if layout & _BIT["channels"] else 1,
        quality=raw.get("quality", 0), version=2, frames=raw.get("frames", 1),
        frame_rate=(raw["rate_num"], raw["rate_den"]) if layout & _BIT["rate"] else None,
        colour=colour, has_quality=bool(layout & _BIT["quality"]))
    return header, raw["section_count"], spans, pos


def read_header(data: bytes) -> Header:
    """Parse and validate the header only (enough for ``lcodec info``)."""
    if _check_version(data) == 1:
        return _parse_header_v1(data)[0]
    return _parse_header_v2(data)[0]


def _parse(data: bytes) -> tuple[Container, StreamLayout]:
    version = _check_version(data)
    lengths: list[int] = []
    length_spans: list[FieldSpan] = []
    if version == 1:
        header, count, spans = _parse_header_v1(data)
        table_end = HEADER_V1_SIZE + 4 * count
        if len(data) < table_end + CRC_SIZE:
            raise CorruptStreamError("truncated stream: section table incomplete")
        lengths = list(struct.unpack_from(f"<{count}I", data, HEADER_V1_SIZE))
        length_spans = [FieldSpan(f"length[{i}]", HEADER_V1_SIZE + 4 * i, HEADER_V1_SIZE + 4 * i + 4, "u32", n)
                        for i, n in enumerate(lengths)]
        expected = table_end + sum(lengths) + CRC_SIZE
        if expected != len(data):
            raise CorruptStreamError(
                f"stream is {len(data)} bytes but its section table implies {expected}"
                + (" (truncated)" if len(data) < expected else ""))
    else:
        header, count, spans, pos = _parse_header_v2(data)
        for i in range(count - 1):
            n, end = decode_varint(data, pos, "section table")
            lengths.append(n)
            length_spans.append(FieldSpan(f"length[{i}]", pos, end, "varint", n))
            pos = end
        table_end = pos
        if len(data) < table_end + CRC_SIZE:
            raise CorruptStreamError("truncated stream: section table incomplete")
        remaining = len(data) - CRC_SIZE - table_end - sum(lengths)
        if remaining < 0 or (count == 0 and remaining != 0):
            expected = table_end + sum(lengths) + CRC_SIZE
            raise CorruptStreamError(
                f"stream is {len(data)} bytes but its section table implies "
                + (f"{expected}" if count == 0 else f"at least {expected}")
                + (" (truncated)" if remaining < 0 else ""))
        if count:
            lengths.append(remaining)
    (crc,) = struct.unpack_from("<I", data, len(data) - CRC_SIZE)
    if zlib.crc32(data[:-CRC_SIZE]) != crc:
        raise CorruptStreamError("stream failed its CRC-32 check (corrupted)")
    sections, section_spans, pos = [], [], table_end
    for n in lengths:
        sections.append(bytes(data[pos:pos + n]))
        section_spans.append((pos, pos + n))
        pos += n
    layout = StreamLayout(version, tuple(spans), tuple(length_spans), tuple(section_spans))
    return Container(header, tuple(sections)), layout


def read_container(data: bytes) -> Container:
    """Parse a whole stream, checking lengths and the CRC before any section is used."""
    return _parse(data)[0]


def stream_layout(data: bytes) -> StreamLayout:
    """Where every field, length entry and section of a valid stream lies."""
    return _parse(data)[1]


# -- documentation -------------------------------------------------------------------------
def _number(n: int) -> str:
    if n >= 1 << 16 and n & (n - 1) == 0:
        return f"2^{n.bit_length() - 1}"
    if n >= (1 << 16) - 1 and (n + 1) & n == 0:
        return f"2^{n.bit_length()} - 1"
    return str(n)


def _values(f: Field) -> str:
    if f.name == "magic":
        return "`LCDC`"
    if f.name == "layout":
        reserved = [i for i in range(8) if LAYOUT_RESERVED >> i & 1]
        return f"bits {reserved[0]}-{reserved[-1]} are 0"
    lo_hi = f.values or f.encoding.natural
    if lo_hi is None:
        return "any"
    lo, hi = lo_hi
    return _number(lo) if lo == hi else f"{_number(lo)} ..= {_number(hi)}"


def format_table_markdown(version: int = FORMAT_VERSION) -> str:
    """The header table of ``version`` as FORMAT.md prints it (tests compare the two)."""
    if version == 1:
        rows = ["| offset | field | type | meaning |", "| --- | --- | --- | --- |"]
        offset = 0
        for f in HEADER_V1:
            rows.append(f"| {offset} | `{f.name}` | {f.encoding.label} | {f.description} |")
            offset += f.size
        return "\n".join(rows)
    if version != 2:
        raise ValueError(f"no format version {version}")
    rows = ["| field | encoding | present | values | meaning |", "| --- | --- | --- | --- | --- |"]
    bits = {b.name: b.bit for b in LAYOUT_BITS}
    for f in HEADER_V2:
        present = "always" if f.present is None else f"if `layout` bit {bits[f.present]} (`{f.present}`)"
        rows.append(f"| `{f.name}` | {f.encoding.label} | {present} | {_values(f)} | {f.description} |")
    for name, encoding, present, meaning in TRAILER_V2:
        rows.append(f"| {name} | {encoding} | {present or 'always'} | | {meaning} |")
    return "\n".join(rows)


def layout_bits_markdown() -> str:
    """The bits of version 2's ``layout`` field as FORMAT.md prints them."""
    rows = ["| bit | name | meaning |", "| --- | --- | --- |"]
    rows += [f"| {b.bit} | `{b.name}` | {b.description} |" for b in LAYOUT_BITS]
    reserved = [i for i in range(8) if LAYOUT_RESERVED >> i & 1]
    rows.append(f"| {reserved[0]}-{reserved[-1]} | reserved | 0; a reader refuses a stream that sets one |")
    return "\n".join(rows)
