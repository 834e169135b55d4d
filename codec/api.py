"""The public library API: ``compress`` and ``decompress``."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .container import CODEC_IDS, Container, Header, read_container, read_header, write_container
from .errors import CodecError, CorruptStreamError, UnsupportedImageError
from .imageio import as_array, decode_idx, is_idx_name, looks_like_idx
from .registry import CodecSpec, codec_for_wire_id, get_codec


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    header: Header
    images: int = 1  # more than one for a lossless image set

    @property
    def bits_per_pixel(self) -> float:
        """Bits per pixel (per dimension for grayscale), over all images of the stream."""
        return 8.0 * len(self.data) / (self.header.width * self.header.height * self.images)


def compress(image: str | os.PathLike[str] | bytes | np.ndarray, codec: str = "hyperprior",
             quality: int | None = None, verify: bool = False, **options: object) -> bytes:
    """Compress an image to lcodec bytes.

    ``image`` is a path, the bytes of an image file, an HxWx3 uint8 array (RGB) or an HxW
    (or HxWx1) uint8 array (grayscale). ``verify=True`` decodes the result once more and
    checks it against the encoder's own reconstruction. Encoder ``options`` go to the codecs
    that take them (``overfit``: ``preset``, ``time_budget``, ``iterations``, ``target_bpp``,
    ``progress``); any other codec refuses them with a :class:`CodecError`.

    >>> import numpy as np, codec
    >>> data = codec.compress(np.full((16, 16, 3), 128, np.uint8), quality=2)
    >>> codec.decompress(data).shape
    (16, 16, 3)
    """
    return compress_image(image, codec, quality, verify, **options).data


def compress_image(image: str | os.PathLike[str] | bytes | np.ndarray, codec: str = "hyperprior",
                   quality: int | None = None, verify: bool = False, **options: object) -> EncodedImage:
    """As :func:`compress`, returning the header too. ``options`` go to codecs that take
    encoder options (``overfit``: ``preset``, ``time_budget``, ``iterations``, ``target_bpp``,
    ``progress``); a target rate stores quality 0 in the header."""
    spec = get_codec(codec)
    options = {k: v for k, v in options.items() if v is not None}
    if spec.kind == "lossless":
        return _compress_lossless(spec, image, quality, verify)
    if spec.kind != "image":
        raise CodecError(f"codec {codec!r} does not code images")
    q = spec.default_quality if quality is None else quality
    if not isinstance(q, int) or q not in spec.qualities:
        raise CodecError(f"{codec} quality must be one of {spec.qualities[0]}..{spec.qualities[-1]}, not {quality}")
    pixels = as_array(image)
    h, w, c = pixels.shape
    rgb = np.repeat(pixels, 3, axis=2) if c == 1 else pixels
    impl = spec.load().for_encoding()
    unknown = sorted(set(options) - set(getattr(impl, "encode_options", ())))
    if unknown:
        raise CodecError(f"codec {codec} takes no option {', '.join(unknown)}")
    sections, recon = impl.encode(rgb, q, reconstruct=verify, **options)
    if options.get("target_bpp") is not None:
        q = 0
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


def _compress_lossless(spec: CodecSpec, image: object, quality: int | None, verify: bool) -> EncodedImage:
    """Lossless codecs (``pc-*``): one image, or a set given as an idx3 file or an NxHxW array."""
    if quality not in (None, 0):
        raise CodecError(f"{spec.name} is lossless and has no quality levels (got -q {quality})")
    if isinstance(image, (bytes, bytearray)) and looks_like_idx(bytes(image[:4])):
        images = decode_idx(bytes(image))
    elif isinstance(image, (str, os.PathLike)) and is_idx_name(image):
        try:
            raw = Path(image).read_bytes()
        except OSError as exc:
            raise UnsupportedImageError(f"{image}: cannot read ({exc.strerror})") from None
        images = decode_idx(raw, str(image))
    elif isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] not in (1, 3):
        images = image  # N x H x W
    else:
        images = as_array(image)
    return compress_image_set(images, spec.name, verify)


def compress_image_set(images: np.ndarray, codec: str, verify: bool = False, bits: np.ndarray | None = None,
                       progress: Callable[[int], None] | None = None) -> EncodedImage:
    """Code N same-size grayscale images (NxHxW uint8) into one stream with a lossless codec.

    ``bits`` (float64, length N) receives each image's share of the stream in bits;
    ``progress`` is called with the number of images each time a chunk is done.
    """
    spec = get_codec(codec)
    if spec.kind != "lossless":
        raise CodecError(f"codec {codec!r} does not code image sets (use a lossless codec such as pc-mnist)")
    impl = spec.load().for_encoding()
    flat = impl.check_images(images)
    h, w = impl.shape
    header = Header(codec_id=CODEC_IDS[spec.name], model_id=impl.model_id, weights_hash=impl.weights_hash,
                    width=w, height=h, channels=1, quality=0)
    data = write_container(header, impl.encode_images(flat.reshape(-1, h, w), progress=progress, bits=bits))
    if verify:
        decoded = impl.decode_images(read_container(data).sections, w, h)
        if not np.array_equal(decoded.reshape(flat.shape), flat):
            raise CodecError("verification failed: the decoded images differ from the input")
    return EncodedImage(data, header, flat.shape[0])


def image_count(data: bytes) -> int:
    """How many images a stream holds (1 except for lossless image sets)."""
    return _image_count(read_container(bytes(data)))


def _image_count(container: Container) -> int:
    spec = codec_for_wire_id(container.header.codec_id)
    if spec.kind != "lossless" or not container.sections or len(container.sections[0]) < 4:
        return 1
    return max(1, int.from_bytes(container.sections[0][:4], "little"))


#: decoding work is bounded before it starts: a stream may declare at most its codec's
#: ``max_pixels_per_byte`` pixels per byte of its own size (hyperprior: 4096, where real streams
#: stay below 200 - a flat white 4096x4096 image at the lowest quality is 99 pixels per byte), or
#: its ``free_pixels``, whichever is larger; so decoding time grows at most linearly with the
#: size of the input


def decompress(data: bytes, max_pixels: int | None = None) -> np.ndarray:
    """Decode lcodec bytes to an HxWxC uint8 array (C is 3 for RGB, 1 for grayscale).

    A lossless image-set stream (several images in one stream) decodes to NxHxWx1.

    Hostile streams cannot make the decoder work for long: by default a stream that declares
    more than its codec's ``max_pixels_per_byte`` pixels per byte of its size (and more than the
    codec's ``free_pixels``) is refused before decoding. ``max_pixels`` replaces that rule
    with a plain limit on the pixels decoded.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"expected bytes, not {type(data).__name__}")
    container = read_container(bytes(data))
    hdr = container.header
    spec = codec_for_wire_id(hdr.codec_id)
    pixels = hdr.width * hdr.height * _image_count(container)
    if max_pixels is not None:
        if pixels > max_pixels:
            raise CodecError(f"stream declares {pixels} pixels, more than the limit of {max_pixels}")
    elif pixels > max(spec.free_pixels, spec.max_pixels_per_byte * len(data)):
        raise CorruptStreamError(
            f"stream declares {pixels} pixels in only {len(data)} bytes, more than any real stream; "
            "refusing to decode (set max_pixels, or --max-pixels, to decode it anyway)")
    impl = spec.load().for_stream(hdr.model_id, hdr.weights_hash)
    if spec.kind == "lossless":
        if hdr.channels != 1 or hdr.quality != 0:
            raise CorruptStreamError(f"{spec.name} stream declares {hdr.channels} channels, quality {hdr.quality}")
        images = impl.decode_images(container.sections, hdr.width, hdr.height)
        return images[0] if images.shape[0] == 1 else images
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
        count = image_count(data)
        if count != 1:
            out["images"] = count
            out["bpp"] = 8.0 * len(data) / (hdr.width * hdr.height * count)
    except CorruptStreamError as exc:
        out["crc"] = f"bad: {exc}"
    return out
