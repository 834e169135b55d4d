"""The public library API: ``compress`` and ``decompress``."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .container import CODEC_IDS, Header, read_container, read_header, write_container
from .errors import CodecError, CorruptStreamError
from .imageio import as_array
from .registry import codec_for_wire_id, get_codec


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    header: Header

    @property
    def bits_per_pixel(self) -> float:
        return 8.0 * len(self.data) / (self.header.width * self.header.height)


def compress(image: str | os.PathLike[str] | bytes | np.ndarray, codec: str = "hyperprior",
             quality: int | None = None, verify: bool = False) -> bytes:
    """Compress an image to lcodec bytes.

    ``image`` is a path, the bytes of an image file, an HxWx3 uint8 array (RGB) or an HxW
    (or HxWx1) uint8 array (grayscale). ``verify=True`` decodes the result once more and
    checks it against the encoder's own reconstruction.

    >>> import numpy as np, codec
    >>> data = codec.compress(np.full((16, 16, 3), 128, np.uint8), quality=2)
    >>> codec.decompress(data).shape
    (16, 16, 3)
    """
    return compress_image(image, codec, quality, verify).data


def compress_image(image: str | os.PathLike[str] | bytes | np.ndarray, codec: str = "hyperprior",
                   quality: int | None = None, verify: bool = False) -> EncodedImage:
    spec = get_codec(codec)
    if spec.kind != "image":
        raise CodecError(f"codec {codec!r} does not code images")
    q = spec.default_quality if quality is None else quality
    if not isinstance(q, int) or q not in spec.qualities:
        raise CodecError(f"{codec} quality must be one of {spec.qualities[0]}..{spec.qualities[-1]}, not {quality}")
    pixels = as_array(image)
    h, w, c = pixels.shape
    rgb = np.repeat(pixels, 3, axis=2) if c == 1 else pixels
    impl = spec.load().for_encoding()
    sections, recon = impl.encode(rgb, q, reconstruct=verify)
    header = Header(codec_id=CODEC_IDS[spec.name], model_id=impl.model_id, weights_hash=impl.weights_hash,
                    width=w, height=h, channels=c, quality=q)
    data = write_container(header, sections)
    if verify:
        parsed = read_container(data)
        if parsed.header != header or parsed.sections != tuple(sections):
            raise CodecError("verification failed: container round trip differs")
        decoded = spec.load().for_stream(header.model_id, header.weights_hash).decode(parsed.sections, w, h, q)
        if not np.array_equal(decoded, recon):
            raise CodecError("verification failed: the decoder does not reproduce the encoder's reconstruction")
    return EncodedImage(data, header)


def decompress(data: bytes) -> np.ndarray:
    """Decode lcodec bytes to an HxWxC uint8 array (C is 3 for RGB, 1 for grayscale)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"expected bytes, not {type(data).__name__}")
    container = read_container(bytes(data))
    hdr = container.header
    spec = codec_for_wire_id(hdr.codec_id)
    impl = spec.load().for_stream(hdr.model_id, hdr.weights_hash)
    if hdr.quality not in impl.qualities:
        raise CorruptStreamError(f"stream declares quality {hdr.quality}, which {spec.name} does not have")
    rgb = impl.decode(container.sections, hdr.width, hdr.height, hdr.quality)
    if hdr.channels == 1:
        gray = (rgb.astype(np.uint16).sum(axis=2, keepdims=True) + 1) // 3
        return gray.astype(np.uint8)
    return rgb


def info(data: bytes) -> dict[str, object]:
    """The header of a stream, as a dict (no decoding, no weights needed)."""
    hdr = read_header(bytes(data))
    try:
        name = codec_for_wire_id(hdr.codec_id).name
    except CodecError:
        name = f"unknown ({hdr.codec_id})"
    out: dict[str, object] = {
        "format_version": hdr.version, "codec": name, "codec_id": hdr.codec_id, "model_id": hdr.model_id,
        "weights": hdr.weights_hash.hex(), "width": hdr.width, "height": hdr.height,
        "channels": hdr.channels, "bit_depth": hdr.bit_depth, "quality": hdr.quality,
        "bytes": len(data), "bpp": 8.0 * len(data) / (hdr.width * hdr.height),
    }
    try:
        container = read_container(bytes(data))
        out["sections"] = [len(s) for s in container.sections]
        out["crc"] = "ok"
    except CorruptStreamError as exc:
        out["crc"] = f"bad: {exc}"
    return out
