"""The public library API: ``compress`` and ``decompress``.

This module knows codecs only through the registry (:mod:`codec.registry`) and the typed
interfaces of :mod:`codec.interfaces`: it checks qualities and encoder options against what
a codec declares, hands pixels to the codec, and wraps its sections in the container.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .container import (FORMAT_VERSION, MAX_DIMENSION, MAX_FRAMES, MAX_PIXELS, MAX_TOTAL_PIXELS, WEIGHTS_HASH_SIZE,
                        Container, Header, read_container, read_header, write_container)
from .errors import CodecError, CorruptStreamError, UnsupportedImageError
from .imageio import as_array, decode_idx, is_idx_name, looks_like_idx
from .interfaces import Encoded, ImageCodec, ImageSetCodec, Progress, StreamInfo
from .registry import DEFAULT_CODEC, CodecSpec, codec_for_wire_id, get_codec


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    header: Header
    images: int = 1  # more than one for an image set
    stats: Any = None  # the encoder's statistics (a mapping), when it reports any

    @property
    def bits_per_pixel(self) -> float:
        """Bits per pixel (per dimension for grayscale), over all images of the stream."""
        return 8.0 * len(self.data) / (self.header.width * self.header.height * self.images)


def compress(image: str | os.PathLike[str] | bytes | np.ndarray | Any, codec: str | None = None,
             quality: int | None = None, verify: bool = False, progress: Progress | None = None,
             **options: object) -> bytes:
    """Compress an image to lcodec bytes.

    ``image`` is a path, the bytes of an image file, a binary file object, a PIL image, an
    HxWx3 uint8 array (RGB) or an HxW (or HxWx1) uint8 array (grayscale); for an image-set
    codec also an idx3 file or an NxHxW array. ``codec`` defaults to the registry's default codec. ``verify=True`` decodes the
    result once more and checks it against the encoder's own reconstruction. Encoder
    ``options`` are those the codec declares in the registry (``lcodec info --codecs`` lists
    them, as ``--name`` flags); ``progress(done, total, message)``
    receives reports of long encodes. Anything else is refused with a :class:`CodecError`.

    >>> import numpy as np, codec
    >>> data = codec.compress(np.full((16, 16, 3), 128, np.uint8), quality=2)
    >>> codec.decompress(data).shape
    (16, 16, 3)
    """
    return compress_image(image, codec, quality, verify, progress, **options).data


def _check_quality(spec: CodecSpec, quality: object) -> int | None:
    """The quality as a Python int (numpy integers too: a level read from an array is as good
    as a literal); booleans and floats are refused, not read as levels."""
    if isinstance(quality, np.integer):  # np.bool_ is not one
        quality = int(quality)
    if isinstance(quality, bool) or not (quality is None or isinstance(quality, int)):
        raise CodecError(f"{spec.name}: quality must be an integer, not {type(quality).__name__} {quality!r}")
    if not spec.qualities:
        if quality not in (None, 0):
            raise CodecError(f"{spec.name} has no quality levels (got quality {quality})")
        return None
    q = spec.default_quality if quality is None else quality
    if q not in spec.qualities:
        raise CodecError(f"{spec.name} quality must be one of {spec.qualities[0]}..{spec.qualities[-1]}, "
                         f"not {quality}")
    return q


def _check_size(width: int, height: int, frames: int = 1) -> None:
    """Refuse, before any encoding, a size the container cannot record: a stream that
    ``read_header`` would refuse must never be written."""
    if width > MAX_DIMENSION or height > MAX_DIMENSION:
        raise UnsupportedImageError(f"image is {width}x{height}; a stream holds at most {MAX_DIMENSION} pixels "
                                    "on a side")
    if width * height > MAX_PIXELS:
        raise UnsupportedImageError(f"image is {width}x{height} ({width * height} pixels); a stream holds at most "
                                    f"{MAX_PIXELS} pixels per image")
    if frames > MAX_FRAMES or width * height * frames > MAX_TOTAL_PIXELS:
        raise UnsupportedImageError(f"{frames} images of {width}x{height} are more than a stream holds "
                                    f"(at most {MAX_FRAMES} images, {MAX_TOTAL_PIXELS} pixels in all)")


def _check_options(spec: CodecSpec, options: dict[str, object]) -> dict[str, object]:
    out = {}
    for name, value in options.items():
        if value is None:
            continue
        opt = spec.option(name)
        if opt is None:
            takes = ", ".join(o.name for o in spec.options) or "none"
            raise CodecError(f"codec {spec.name} takes no option {name} (its options: {takes})")
        try:
            out[name] = opt.check(value)
        except ValueError as exc:
            raise CodecError(f"{spec.name}: {exc}") from None
    return out


def _header(spec: CodecSpec, impl: Any, width: int, height: int, channels: int, enc: Encoded) -> Header:
    size = WEIGHTS_HASH_SIZE[FORMAT_VERSION]
    return Header(codec_id=spec.wire_id, model_id=impl.model_id,
                  weights_hash=bytes(impl.weights_hash[:size]).ljust(size, b"\0"),
                  width=width, height=height, channels=channels,
                  quality=enc.quality or 0, has_quality=enc.quality is not None,
                  frames=enc.frames, frame_rate=enc.frame_rate)


def recorded_quality(header: Header) -> int | None:
    """The quality a stream records; None when it records none (version 1 wrote 0 for that)."""
    if not header.has_quality or (header.version == 1 and header.quality == 0):
        return None
    return header.quality


def stream_info(header: Header) -> StreamInfo:
    """What a decoder sees of a header."""
    return StreamInfo(width=header.width, height=header.height, channels=header.channels,
                      quality=recorded_quality(header), frames=header.frames,
                      frame_rate=header.frame_rate, model_id=header.model_id, weights_hash=header.weights_hash,
                      version=header.version)


def _as_image_set(image: object) -> np.ndarray | None:
    """An idx3 file (path or bytes) or an NxHxW array as NxHxW uint8; None for anything else."""
    if isinstance(image, (bytes, bytearray)) and looks_like_idx(bytes(image[:4])):
        return decode_idx(bytes(image))
    if isinstance(image, (str, os.PathLike)) and is_idx_name(image):
        try:
            raw = Path(image).read_bytes()
        except OSError as exc:
            raise UnsupportedImageError(f"{image}: cannot read ({exc.strerror})") from None
        return decode_idx(raw, str(image))
    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] not in (1, 3):
        return image
    return None


def compress_image(image: str | os.PathLike[str] | bytes | np.ndarray, codec: str | None = None,
                   quality: int | None = None, verify: bool = False, progress: Progress | None = None,
                   **options: object) -> EncodedImage:
    """As :func:`compress`, returning the header, the image count and the encoder's
    statistics too."""
    spec = get_codec(codec or DEFAULT_CODEC)
    opts = _check_options(spec, options)
    q = _check_quality(spec, quality)
    images = _as_image_set(image)
    if images is not None:
        if opts:
            raise CodecError(f"{', '.join(opts)}: image sets take no encoder options")
        return _compress_set(spec, spec.load().for_encoding(), images, verify, None, None)
    pixels = as_array(image)  # refusals of the input come before any model loads
    h, w, c = pixels.shape
    _check_size(w, h)
    impl = spec.load().for_encoding()
    if not isinstance(impl, ImageCodec):
        raise CodecError(f"codec {spec.name} does not code single images")
    enc = impl.encode(pixels, q, reconstruct=verify, progress=progress, **opts)
    header = _header(spec, impl, w, h, c, enc)
    data = write_container(header, enc.sections)
    if verify:
        _verify(spec, data, header, enc, enc.reconstruction)
    return EncodedImage(data, header, 1, dict(enc.stats))


def _verify(spec: CodecSpec, data: bytes, header: Header, enc: Encoded, expected: np.ndarray | None) -> None:
    parsed = read_container(data)
    if parsed.header != header or parsed.sections != tuple(enc.sections):
        raise CodecError("verification failed: container round trip differs")
    info_ = stream_info(header)
    decoded = spec.load().for_stream(info_).decode(parsed.sections, info_)
    if expected is None or not np.array_equal(decoded, expected):
        raise CodecError("verification failed: the decoder does not reproduce the encoder's reconstruction")


def compress_image_set(images: np.ndarray, codec: str, verify: bool = False, bits: np.ndarray | None = None,
                       progress: Progress | None = None) -> EncodedImage:
    """Code N same-size images (NxHxW or NxHxWxC uint8) into one stream with an image-set codec.

    ``bits`` (float64, length N) receives each image's share of the stream in bits;
    ``progress(done, total, message)`` is called as chunks are done.
    """
    spec = get_codec(codec)
    return _compress_set(spec, spec.load().for_encoding(), images, verify, bits, progress)


def _compress_set(spec: CodecSpec, impl: Any, images: np.ndarray, verify: bool, bits: np.ndarray | None,
                  progress: Progress | None) -> EncodedImage:
    if not isinstance(impl, ImageSetCodec):
        raise CodecError(f"codec {spec.name!r} does not code image sets")
    a = np.asarray(images)
    if a.ndim == 3:
        a = a[..., None]
    if a.ndim != 4 or a.dtype != np.uint8 or a.shape[0] < 1:
        got = "x".join(str(s) for s in np.asarray(images).shape)
        raise UnsupportedImageError(f"an image set is an NxHxW or NxHxWxC uint8 array, not {got} "
                                    f"({np.asarray(images).dtype})")
    _check_size(a.shape[2], a.shape[1], a.shape[0])
    enc = impl.encode_set(a, reconstruct=verify, progress=progress, bits=bits)
    n, h, w, c = a.shape
    header = _header(spec, impl, w, h, c, enc)
    data = write_container(header, enc.sections)
    if verify:
        _verify(spec, data, header, enc, a[0] if n == 1 else a)
    return EncodedImage(data, header, n, dict(enc.stats))


#: the largest stream read from a path or file object (a stream of the biggest image the
#: container holds is far smaller): a wrong path to a huge file fails fast instead of filling memory
MAX_STREAM_BYTES = 1 << 30


def _stream_bytes(data: object) -> bytes:
    """The bytes of a stream given as bytes, a path or a binary file object; anything else is a
    :class:`CodecError`, not a ``TypeError`` from ``bytes()``."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, (str, os.PathLike)):
        try:
            with open(data, "rb") as f:
                return _read_limited(f, str(data))
        except OSError as exc:
            raise CodecError(f"{data}: cannot read ({exc.strerror or exc})") from None
    if hasattr(data, "read"):
        return _read_limited(data, "file object")
    raise CodecError(f"expected the bytes of a stream, a path or a binary file, not {type(data).__name__}")


def _read_limited(f: Any, name: str) -> bytes:
    try:
        raw = f.read(MAX_STREAM_BYTES + 1)
    except OSError as exc:
        raise CodecError(f"{name}: cannot read ({exc.strerror or exc})") from None
    except ValueError:  # a text-mode file decoding binary data, or a closed file
        raise CodecError(f"{name}: not a readable binary file (open it with 'rb')") from None
    if not isinstance(raw, (bytes, bytearray)):
        raise CodecError(f"{name}: not opened in binary mode (open it with 'rb')")
    if len(raw) > MAX_STREAM_BYTES:
        raise CodecError(f"{name}: more than {MAX_STREAM_BYTES} bytes, larger than any stream")
    return bytes(raw)


def image_count(data: bytes) -> int:
    """How many images or frames a stream holds."""
    return read_header(_stream_bytes(data)).frames


#: decoding work is bounded before it starts: a stream may declare at most its codec's
#: ``max_pixels_per_byte`` pixels per byte of its own size (declared in the registry, with the
#: figures of real streams beside it), or its ``free_pixels``, whichever is larger, and likewise
#: for the sequential steps of a decoder that works in a wavefront (``decode_steps``), which
#: pixel counts do not bound (a 4x1048576 image is few pixels but a million steps); so decoding
#: time grows at most linearly with the size of the input


def decompress(data: bytes | str | os.PathLike[str] | Any, max_pixels: int | None = None) -> np.ndarray:
    """Decode an lcodec stream (bytes, a path, or a binary file object) to an HxWxC uint8
    array (C is 3 for RGB, 1 for grayscale).

    A stream of several images or frames decodes to NxHxWxC.

    Hostile streams cannot make the decoder work for long: by default a stream that declares
    more than its codec's ``max_pixels_per_byte`` pixels per byte of its size (and more than the
    codec's ``free_pixels``), or more sequential decoding steps than its ``max_steps_per_byte``
    per byte (and its ``free_steps``), is refused before decoding. ``max_pixels`` replaces those
    rules with a plain limit on the pixels decoded, for trusted input.
    """
    data = _stream_bytes(data)
    if max_pixels is not None:
        if isinstance(max_pixels, np.integer):
            max_pixels = int(max_pixels)
        if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 0:
            raise CodecError(f"max_pixels must be a non-negative integer, not {max_pixels!r}")
    container = read_container(data)
    hdr = container.header
    spec = codec_for_wire_id(hdr.codec_id)
    pixels = hdr.width * hdr.height * hdr.frames
    if max_pixels is not None:
        if pixels > max_pixels:
            raise CodecError(f"stream declares {pixels} pixels, more than the limit of {max_pixels}")
    else:
        if pixels > max(spec.free_pixels, spec.max_pixels_per_byte * len(data)):
            raise CorruptStreamError(
                f"stream declares {pixels} pixels in only {len(data)} bytes, more than any real stream; "
                "refusing to decode (set max_pixels, or --max-pixels, to decode it anyway)")
        steps = spec.decode_steps(hdr.width, hdr.height, hdr.frames)
        if steps > max(spec.free_steps, spec.max_steps_per_byte * len(data)):
            raise CorruptStreamError(
                f"stream declares a {hdr.width}x{hdr.height} image, {steps} sequential decoding steps for "
                f"{spec.name}, in only {len(data)} bytes, more than any real stream; refusing to decode (set "
                "max_pixels, or --max-pixels, to decode it anyway)")
    quality = recorded_quality(hdr)
    if quality is not None and quality not in spec.qualities:
        raise CorruptStreamError(f"stream declares quality {hdr.quality}, which {spec.name} does not have")
    info_ = stream_info(hdr)
    return _decode(spec, container, info_)


def _decode(spec: CodecSpec, container: Container, info_: StreamInfo) -> np.ndarray:
    from entropy import RansError

    impl = spec.load().for_stream(info_)
    # a stream chooses the numbers its decoder computes with: overflow in them is the stream's
    # defect, reported (if at all) by the decoder's checks, never as warnings on the terminal
    try:
        with np.errstate(all="ignore"):
            out = impl.decode(container.sections, info_)
    except RansError as exc:  # codecs convert these; this keeps the promise for any that forgets
        raise CorruptStreamError(str(exc)) from None
    if out.shape[-3:] != (info_.height, info_.width, info_.channels):
        raise CodecError(f"{spec.name} decoded an array of shape {out.shape} for a "
                         f"{info_.width}x{info_.height}x{info_.channels} stream")
    return out


def info(data: bytes | str | os.PathLike[str] | Any) -> dict[str, object]:
    """The header of a stream (bytes, a path or a binary file object), as a dict (no
    decoding, no weights needed)."""
    data = _stream_bytes(data)
    hdr = read_header(data)
    try:
        name = codec_for_wire_id(hdr.codec_id).name
    except CodecError:
        name = f"unknown ({hdr.codec_id})"
    out: dict[str, object] = {
        "format_version": hdr.version, "codec": name, "codec_id": hdr.codec_id, "model_id": hdr.model_id,
        "weights": hdr.weights_hash.hex(), "width": hdr.width, "height": hdr.height,
        "channels": hdr.channels, "bit_depth": hdr.bit_depth,
        "quality": recorded_quality(hdr),
        "bytes": len(data), "bpp": 8.0 * len(data) / (hdr.width * hdr.height * hdr.frames),
    }
    if hdr.frames != 1:
        out["images"] = hdr.frames
    if hdr.frame_rate is not None:
        out["frame_rate"] = f"{hdr.frame_rate[0]}/{hdr.frame_rate[1]}"
    try:
        container = read_container(data)
        out["sections"] = [len(s) for s in container.sections]
        out["crc"] = "ok"
    except CorruptStreamError as exc:
        out["crc"] = f"bad: {exc}"
    return out
