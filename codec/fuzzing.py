"""Mutations of valid streams: a public helper for anyone fuzzing an lcodec decoder.

It is part of the shipped package on purpose: lcodec's own harness uses it
(tests/fuzz, benchmarks/fuzz_decode.py), and so can a program that embeds lcodec and wants
to check that hostile streams end in :class:`codec.CodecError`. Its functions are
``reseal`` (recompute the CRC), ``set_field`` (change one header field, in the stream's own
format version) and ``mutate`` (one random hostile edit); none of them is used by coding.

Plain bit flips, truncations and extensions are caught by the CRC; to reach the deeper
layers the harness also edits header fields and section bytes and then re-seals the CRC,
so the section table, the codec lookup and the entropy decoder each see hostile input.
Field edits follow the layout of the seed's own format version (``container.stream_layout``).
"""

from __future__ import annotations

import random
import struct
import zlib

from .container import StreamLayout, encode_varint, stream_layout
from .errors import CodecError


def reseal(data: bytes) -> bytes:
    """Replace the trailing CRC-32 with the one the bytes before it have."""
    if len(data) < 4:
        return data
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))


def _layout(data: bytes) -> StreamLayout | None:
    try:
        return stream_layout(data)
    except CodecError:
        return None


def set_field(data: bytes, name: str, value: int | bytes) -> bytes:
    """``data`` (a valid stream) with header field ``name`` set to ``value``; the CRC is not re-sealed."""
    span = next(s for s in stream_layout(data).fields if s.name == name)
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
    elif span.kind == "varint":
        raw = encode_varint(value)
    else:
        raw = value.to_bytes(span.end - span.start, "little")
    return data[:span.start] + raw + data[span.end:]


def _new_value(kind: str, size: int, orig: object, name: str, rng: random.Random) -> bytes:
    """Bytes of a hostile value for a field of this kind (a varint may change its length)."""
    if kind == "bytes":
        return bytes(rng.randrange(256) for _ in range(size))
    bits = 32 if kind == "varint" else 8 * size
    choices = [0, 1, 2, 3, 127, 128, 255, (1 << bits) - 1, rng.randrange(1 << bits)]
    if name in ("width", "height", "frames") or name.startswith("length"):
        assert isinstance(orig, int)
        choices += [max(0, orig + rng.randint(-40, 40)), orig * 2, 1 << 20, (1 << 20) + 1]
    value = rng.choice(choices) % (1 << bits)
    if kind != "varint":
        return value.to_bytes(size, "little")
    raw = encode_varint(value)
    if rng.random() < 0.1:  # the same value, not minimally coded (or over 5 bytes)
        raw = bytes(b | 0x80 for b in raw) + b"\x80" * rng.randint(0, 4) + b"\x00"
    return raw


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One random mutation of ``data``; returns (what was done, the new bytes)."""
    kind = rng.choice(["flip", "flips", "truncate", "extend", "field", "field", "section", "section", "lengths"])
    buf = bytearray(data)
    if kind == "flip":
        i = rng.randrange(len(buf))
        buf[i] ^= 1 << rng.randrange(8)
        return f"flip@{i}", bytes(buf)
    if kind == "flips":
        for _ in range(rng.randint(2, 16)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        return "flips", bytes(buf)
    if kind == "truncate":
        n = rng.randrange(len(buf))
        return f"truncate@{n}", bytes(buf[:n])
    if kind == "extend":
        extra = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        return "extend", bytes(buf) + extra if rng.random() < 0.5 else reseal(bytes(buf[:-4]) + extra + bytes(4))
    layout = _layout(data)
    if layout is None:
        return f"{kind}:unparsed", bytes(buf)
    if kind == "field":
        span = rng.choice([s for s in layout.fields if s.name != "magic"])
        new = _new_value(span.kind, span.end - span.start, span.value, span.name, rng)
        return f"field:{span.name}={new.hex()}", reseal(data[:span.start] + new + data[span.end:])
    if kind == "section":
        # garbage inside a section, CRC re-sealed: reaches the entropy decoder
        start = layout.sections[0][0] if layout.sections else len(buf) - 4
        if len(buf) - 4 <= start:
            return "section:none", bytes(buf)
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(start, len(buf) - 4)] = rng.randrange(256)
        return "section", reseal(bytes(buf))
    # section lengths edited consistently or not, CRC re-sealed
    if not layout.lengths:
        return "lengths:none", bytes(buf)
    i = rng.randrange(len(layout.lengths))
    span = layout.lengths[i]
    new = _new_value(span.kind, span.end - span.start, span.value, span.name, rng)
    return f"lengths[{i}]", reseal(data[:span.start] + new + data[span.end:])
