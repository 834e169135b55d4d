"""The lcodec container, written once as data.

``HEADER`` is the normative field table; ``bitstreams/FORMAT.md`` carries the same table and
a test checks that the two agree. All integers are little-endian.

    header (fixed fields below) | section lengths (u32 each) | sections | CRC-32 (u32)

The CRC-32 (ISO-HDLC, as zlib computes it) covers every byte before it.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from .errors import CorruptStreamError

MAGIC = b"LCDC"
FORMAT_VERSION = 1

#: wire ids of the codecs; never reuse or renumber an id
CODEC_IDS: dict[str, int] = {
    "hyperprior": 1,
    "pc-mnist": 2,
    "pc-fashion-mnist": 3,
    "overfit": 4,
}

#: limits checked before anything is allocated
MAX_SECTIONS = 4096
MAX_DIMENSION = 1 << 20
MAX_PIXELS = 1 << 28


@dataclass(frozen=True)
class Field:
    name: str
    fmt: str  # struct code
    description: str

    @property
    def size(self) -> int:
        return struct.calcsize("<" + self.fmt)


HEADER: tuple[Field, ...] = (
    Field("magic", "4s", "the bytes `LCDC`"),
    Field("version", "B", "format version; this document describes version 1"),
    Field("codec_id", "H", "wire id of the codec (table below)"),
    Field("model_id", "H", "the codec's model architecture; the codec defines its meaning"),
    Field("weights_hash", "8s", "first 8 bytes of the SHA-256 of the weights file used"),
    Field("width", "I", "image width in pixels, 1 ..= 2^20"),
    Field("height", "I", "image height in pixels, 1 ..= 2^20"),
    Field("channels", "B", "1 (grayscale) or 3 (RGB)"),
    Field("bit_depth", "B", "bits per sample; 8"),
    Field("quality", "B", "quality level the codec coded with"),
    Field("flags", "B", "reserved, 0"),
    Field("section_count", "H", "number of sections, 0 ..= 4096"),
)
_HEADER_FMT = "<" + "".join(f.fmt for f in HEADER)
HEADER_SIZE = struct.calcsize(_HEADER_FMT)


@dataclass(frozen=True)
class Header:
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


@dataclass(frozen=True)
class Container:
    header: Header
    sections: tuple[bytes, ...] = field(default_factory=tuple)


def write_container(header: Header, sections: list[bytes] | tuple[bytes, ...]) -> bytes:
    if len(sections) > MAX_SECTIONS:
        raise ValueError("too many sections")
    if len(header.weights_hash) != 8:
        raise ValueError("weights_hash must be 8 bytes")
    values = {
        "magic": MAGIC, "version": header.version, "codec_id": header.codec_id,
        "model_id": header.model_id, "weights_hash": header.weights_hash, "width": header.width,
        "height": header.height, "channels": header.channels, "bit_depth": header.bit_depth,
        "quality": header.quality, "flags": header.flags, "section_count": len(sections),
    }
    head = struct.pack(_HEADER_FMT, *(values[f.name] for f in HEADER))
    lengths = struct.pack(f"<{len(sections)}I", *(len(s) for s in sections))
    body = head + lengths + b"".join(sections)
    return body + struct.pack("<I", zlib.crc32(body))


def read_header(data: bytes) -> Header:
    """Parse and validate the fixed header only (enough for ``lcodec info``)."""
    if len(data) < len(MAGIC) or data[:len(MAGIC)] != MAGIC:
        raise CorruptStreamError("not an lcodec stream (bad magic)")
    if len(data) < HEADER_SIZE:
        raise CorruptStreamError("truncated stream: header incomplete")
    raw = dict(zip((f.name for f in HEADER), struct.unpack_from(_HEADER_FMT, data)))
    if raw["version"] != FORMAT_VERSION:
        raise CorruptStreamError(
            f"stream is format version {raw['version']}; this lcodec reads version {FORMAT_VERSION} only"
            + (" (upgrade lcodec)" if raw["version"] > FORMAT_VERSION else ""))
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
    return Header(codec_id=raw["codec_id"], model_id=raw["model_id"], weights_hash=raw["weights_hash"],
                  width=w, height=h, channels=raw["channels"], quality=raw["quality"],
                  bit_depth=raw["bit_depth"], flags=raw["flags"], version=raw["version"])


def read_container(data: bytes) -> Container:
    """Parse a whole stream, checking lengths and the CRC before any section is used."""
    header = read_header(data)
    count = struct.unpack_from("<H", data, HEADER_SIZE - 2)[0]
    table_end = HEADER_SIZE + 4 * count
    if len(data) < table_end + 4:
        raise CorruptStreamError("truncated stream: section table incomplete")
    lengths = struct.unpack_from(f"<{count}I", data, HEADER_SIZE)
    expected = table_end + sum(lengths) + 4
    if expected != len(data):
        raise CorruptStreamError(
            f"stream is {len(data)} bytes but its section table implies {expected}"
            + (" (truncated)" if len(data) < expected else ""))
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if zlib.crc32(data[:-4]) != crc:
        raise CorruptStreamError("stream failed its CRC-32 check (corrupted)")
    sections, pos = [], table_end
    for n in lengths:
        sections.append(bytes(data[pos:pos + n]))
        pos += n
    return Container(header, tuple(sections))


def format_table_markdown() -> str:
    """The header table as FORMAT.md prints it (tests compare the two)."""
    names = {"4s": "4 bytes", "8s": "8 bytes", "B": "u8", "H": "u16", "I": "u32"}
    rows = ["| offset | field | type | meaning |", "| --- | --- | --- | --- |"]
    offset = 0
    for f in HEADER:
        rows.append(f"| {offset} | `{f.name}` | {names[f.fmt]} | {f.description} |")
        offset += f.size
    return "\n".join(rows)
