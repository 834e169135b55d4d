"""Reading and writing image files, with every refusal as a one-line :class:`CodecError`.

Inputs: PNG, JPEG, PPM/PGM, TIFF, WebP (anything Pillow opens as 8-bit RGB or grayscale).
Alpha: an alpha channel that is fully opaque carries no information and is dropped; any
other alpha is refused, since the image codecs code colour only.
Outputs: PNG, or PPM/PGM when the output name ends in .ppm/.pgm/.pnm.

A file is judged by its header before its pixels are decoded: a size no stream can hold,
more than 8 bits per sample (which Pillow would silently cut to 8 for 16-bit RGB) and
several frames (of which Pillow would read the first) are refused, never coded in part.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .container import MAX_DIMENSION, MAX_PIXELS
from .errors import UnsupportedImageError

PNM_SUFFIXES = {".ppm", ".pgm", ".pnm"}
#: no larger image is decoded: more pixels than a stream holds (Pillow's bomb guard is set to it)
MAX_INPUT_PIXELS = MAX_PIXELS
#: formats whose extra frames are an animation (an MPO's or a TIFF's are other pictures)
ANIMATED_FORMATS = ("GIF", "PNG", "WEBP")


def _pil():
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_INPUT_PIXELS
    return Image


#: the most bytes read from a file object given as an image
MAX_FILE_BYTES = 1 << 30

#: how errors name an image given as bytes (callers that know its origin substitute it)
UNNAMED = "<input>"


def read_image(source: str | os.PathLike[str] | bytes) -> np.ndarray:
    """Decode an image file (path or bytes) to HxWx3 or HxWx1 uint8."""
    Image = _pil()
    name = UNNAMED if isinstance(source, bytes) else str(source)
    try:
        fp = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
    except FileNotFoundError:
        raise UnsupportedImageError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise UnsupportedImageError(f"{name}: is a directory") from None
    except OSError as exc:
        raise UnsupportedImageError(f"{name}: cannot open ({exc.strerror})") from None
    unreadable = f"{name}: not a readable image (PNG, JPEG, PPM/PGM, TIFF or WebP)"
    with fp, warnings.catch_warnings():
        # Pillow's remarks on odd files are not the user's business; its bomb warning becomes
        # the refusal below (it fires in open(), before we see the size)
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(fp)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UnsupportedImageError(f"{name}: image has more than {MAX_INPUT_PIXELS} pixels, more than a "
                                        "stream holds; not decoded") from None
        except Exception:
            raise UnsupportedImageError(unreadable) from None
        check_image_header(img, name)
        try:
            img.load()
        except Exception:
            raise UnsupportedImageError(unreadable) from None
        return image_to_array(displayed(img, name), name)


def displayed(img: Any, name: str = "<image>") -> Any:
    """The image as a viewer shows it: EXIF orientation applied (a phone's portrait JPEG is
    stored sideways), and colours converted to sRGB when an ICC profile says they are in
    another colour space (streams hold sRGB; the decoded PNG is sRGB). A profile that cannot be
    read is refused rather than ignored."""
    from PIL import ImageOps

    try:
        img = ImageOps.exif_transpose(img) or img
    except Exception:
        raise UnsupportedImageError(f"{name}: its EXIF orientation cannot be read") from None
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA"):
        return img
    from PIL import ImageCms

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = ImageCms.getProfileDescription(source).strip().lower()
    except Exception:
        raise UnsupportedImageError(f"{name}: its ICC colour profile cannot be read (strip it, or convert the "
                                    "image to sRGB first)") from None
    if "srgb" in description or "iec61966" in description:
        return img
    try:
        return ImageCms.profileToProfile(img, source, ImageCms.createProfile("sRGB"), outputMode=img.mode)
    except Exception:
        raise UnsupportedImageError(f"{name}: its colours cannot be converted from its ICC profile "
                                    f"({description}) to sRGB") from None


def check_image_header(img: Any, name: str = "<image>") -> None:
    """Refuse, from what ``Image.open`` read of the header (no pixels decoded yet), an image
    lcodec would code wrongly or could not store: too large, deeper than 8 bits, or animated."""
    w, h = img.size
    if w > MAX_DIMENSION or h > MAX_DIMENSION or w * h > MAX_INPUT_PIXELS:
        raise UnsupportedImageError(f"{name}: image is {w}x{h}; a stream holds at most {MAX_DIMENSION} pixels "
                                    f"on a side and {MAX_INPUT_PIXELS} in all; not decoded")
    if _deeper_than_8_bits(img):
        raise UnsupportedImageError(f"{name}: image has more than 8 bits per sample; only 8-bit is supported "
                                    "(convert it to 8 bits first)")
    frames = getattr(img, "n_frames", 1) if img.format in ANIMATED_FORMATS else 1
    if frames > 1:
        raise UnsupportedImageError(f"{name}: animated image ({frames} frames); only still images are coded "
                                    "(extract one frame first)")


def _deeper_than_8_bits(img: Any) -> bool:
    """Whether the file stores more than 8 bits per sample.

    Pillow opens 16-bit RGB(A) PNG, TIFF and PPM as 8-bit modes and drops the low bits as it
    decodes, so the mode alone does not tell; the raw mode of its decoder (``RGB;16B``: 16
    bits a sample, unlike BMP's 5-6-5 ``BGR;16``), a TIFF's BitsPerSample or a PPM's maximum
    value (over 255) does.
    """
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        return True
    for tile in getattr(img, "tile", None) or []:
        args = tile[3]
        raw = args if isinstance(args, str) else args[0] if isinstance(args, tuple) and args else None
        if isinstance(raw, str) and raw.endswith((";16B", ";16L", ";16N")):
            return True
        if img.format == "PPM" and isinstance(args, tuple) and len(args) > 1 and isinstance(args[1], int) \
                and args[1] > 255:
            return True
    if img.format == "TIFF":
        bits = img.tag_v2.get(258, (8,))  # BitsPerSample
        return max(bits if isinstance(bits, tuple) else (bits,)) > 8
    return False


def image_to_array(img, name: str = "<image>") -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F") or mode.startswith("I;16"):
        raise UnsupportedImageError(f"{name}: {mode} images are more than 8 bits per sample; only 8-bit is supported")
    if mode == "P":
        has_alpha = "transparency" in img.info or img.palette.mode == "RGBA"
        img = img.convert("RGBA" if has_alpha else "RGB")
        mode = img.mode
    if mode == "1":
        img, mode = img.convert("L"), "L"
    if mode in ("RGBA", "LA", "PA"):
        alpha = np.asarray(img.getchannel("A"))
        if alpha.min() != 255:
            raise UnsupportedImageError(
                f"{name}: image has transparency; only opaque images are coded (flatten the alpha channel first)")
        img = img.convert("RGB" if mode == "RGBA" else "L")
        mode = img.mode
    if mode == "L":
        return np.asarray(img, dtype=np.uint8)[:, :, None].copy()
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8).copy()
    raise UnsupportedImageError(f"{name}: colour mode {mode} is not supported (use RGB or grayscale)")


def as_array(image: object) -> np.ndarray:
    """Accept a path, bytes, a binary file object, a PIL image, or an HxW / HxWx1 / HxWx3
    uint8 array; return HxWxC uint8."""
    if isinstance(image, (str, os.PathLike, bytes)):
        return read_image(image)  # type: ignore[arg-type]
    if isinstance(image, (bytearray, memoryview)):
        return read_image(bytes(image))
    Image = _pil()
    if isinstance(image, Image.Image):
        check_image_header(image, "PIL image")
        try:
            image.load()
        except Exception:
            raise UnsupportedImageError("PIL image: its pixels cannot be loaded") from None
        return image_to_array(displayed(image, "PIL image"), "PIL image")
    if hasattr(image, "read") and not isinstance(image, np.ndarray):
        try:
            raw = image.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise UnsupportedImageError(f"file object: cannot read ({exc.strerror or exc})") from None
        except ValueError:  # text mode, or closed
            raise UnsupportedImageError("file object: not a readable binary file (open it with 'rb')") from None
        if not isinstance(raw, (bytes, bytearray)):
            raise UnsupportedImageError("file object: not opened in binary mode")
        if len(raw) > MAX_FILE_BYTES:
            raise UnsupportedImageError(f"file object: more than {MAX_FILE_BYTES} bytes; not read")
        return read_image(bytes(raw))
    if not isinstance(image, np.ndarray):
        raise UnsupportedImageError(f"expected a path, bytes, a file object, a PIL image or a numpy array, "
                                    f"not {type(image).__name__}")
    if image.dtype != np.uint8:
        raise UnsupportedImageError(f"arrays must be uint8, not {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise UnsupportedImageError(f"array shape {image.shape} is not HxW, HxWx1 or HxWx3")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise UnsupportedImageError(f"array shape {image.shape} has no pixels")
    return np.ascontiguousarray(image)


def encode_image_file(pixels: np.ndarray, suffix: str) -> bytes:
    """PNG bytes, or binary PPM/PGM bytes for a .ppm/.pgm/.pnm suffix."""
    suffix = suffix.lower()
    if suffix in PNM_SUFFIXES:
        h, w, c = pixels.shape
        magic = b"P6" if c == 3 else b"P5"
        return magic + f"\n{w} {h}\n255\n".encode() + np.ascontiguousarray(pixels).tobytes()
    Image = _pil()
    img = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def output_suffix(path: str | Path | None) -> str:
    if path is None or str(path) == "-":
        return ".png"
    suffix = Path(path).suffix.lower()
    if suffix not in PNM_SUFFIXES | {".png"}:
        raise UnsupportedImageError(f"{path}: output must be .png, .ppm, .pgm or .pnm")
    return suffix


# -- idx image sets (the MNIST layout: big-endian magic 0x00000803, count, rows, cols, pixels) --
IDX_MAGIC = b"\x00\x00\x08\x03"
IDX_SUFFIXES = (".idx", ".idx3", "-ubyte", ".idx.gz", ".idx3.gz", "-ubyte.gz")


def is_idx_name(path: str | os.PathLike[str]) -> bool:
    return str(path).lower().endswith(IDX_SUFFIXES)


def looks_like_idx(data: bytes) -> bool:
    """True for the bytes of an idx3 file, raw or gzip-compressed."""
    return data[:4] == IDX_MAGIC or data[:2] == b"\x1f\x8b"


def decode_idx(data: bytes, name: str = "<input>") -> np.ndarray:
    """An idx3 file's images as (N, rows, cols) uint8; gzip input is unpacked first."""
    import gzip
    import struct
    import zlib

    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            raise UnsupportedImageError(f"{name}: corrupt gzip data") from None
    if len(data) < 16 or data[:4] != IDX_MAGIC:
        raise UnsupportedImageError(f"{name}: not an idx3 image file (8-bit, 3 dimensions)")
    n, rows, cols = struct.unpack(">III", data[4:16])
    if len(data) != 16 + n * rows * cols:
        raise UnsupportedImageError(f"{name}: idx3 file holds {len(data) - 16} pixel bytes, its header says "
                                    f"{n}x{rows}x{cols}")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows, cols).copy()


def encode_idx(images: np.ndarray, gz: bool = False) -> bytes:
    """(N, rows, cols[, 1]) uint8 as an idx3 file (gzip-compressed when ``gz``)."""
    import gzip
    import struct

    a = images[..., 0] if images.ndim == 4 else images
    raw = IDX_MAGIC + struct.pack(">III", *a.shape) + np.ascontiguousarray(a, dtype=np.uint8).tobytes()
    return gzip.compress(raw, mtime=0) if gz else raw
