"""Mutations of valid streams, for the decoder fuzz harness (tests/fuzz, benchmarks/fuzz_decode.py).

Plain bit flips, truncations and extensions are caught by the CRC; to reach the deeper
layers the harness also edits header fields and section bytes and then re-seals the CRC,
so the section table, the codec lookup and the entropy decoder each see hostile input.
"""

from __future__ import annotations

import random
import struct
import zlib

from .container import HEADER, HEADER_SIZE

_OFFSETS = {}
_pos = 0
for _f in HEADER:
    _OFFSETS[_f.name] = (_pos, _f.fmt)
    _pos += _f.size


def reseal(data: bytes) -> bytes:
    """Replace the trailing CRC-32 with the one the bytes before it have."""
    if len(data) < 4:
        return data
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))


def set_field(data: bytes, name: str, value) -> bytes:
    off, fmt = _OFFSETS[name]
    buf = bytearray(data)
    struct.pack_into("<" + fmt, buf, off, value)
    return bytes(buf)


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
    if kind == "field":
        name = rng.choice(["version", "codec_id", "model_id", "weights_hash", "width", "height", "channels",
                           "bit_depth", "quality", "flags", "section_count"])
        _, fmt = _OFFSETS[name]
        if fmt.endswith("s"):
            value: bytes | int = bytes(rng.randrange(256) for _ in range(int(fmt[:-1])))
        else:
            bits = struct.calcsize(fmt) * 8
            choices = [0, 1, 2, 3, 255, (1 << bits) - 1, rng.randrange(1 << bits)]
            if name in ("width", "height"):
                orig = struct.unpack_from("<" + fmt, data, _OFFSETS[name][0])[0]
                choices += [max(0, orig + rng.randint(-40, 40)), orig * 2, 1 << 20, (1 << 20) + 1]
            value = rng.choice(choices) % (1 << bits)
        return f"field:{name}={value!r}", reseal(set_field(data, name, value))
    if kind == "section":
        # garbage inside a section, CRC re-sealed: reaches the entropy decoder
        count = struct.unpack_from("<H", data, HEADER_SIZE - 2)[0]
        start = HEADER_SIZE + 4 * count
        if len(buf) - 4 <= start:
            return "section:none", bytes(buf)
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(start, len(buf) - 4)] = rng.randrange(256)
        return "section", reseal(bytes(buf))
    # section lengths edited consistently or not, CRC re-sealed
    count = struct.unpack_from("<H", data, HEADER_SIZE - 2)[0]
    if count == 0:
        return "lengths:none", bytes(buf)
    i = rng.randrange(count)
    off = HEADER_SIZE + 4 * i
    struct.pack_into("<I", buf, off, rng.choice([0, 1, rng.randrange(1 << 32), (1 << 32) - 1]))
    return f"lengths[{i}]", reseal(bytes(buf))
