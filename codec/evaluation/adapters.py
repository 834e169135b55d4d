"""One adapter per codec, ours and classical, behind one interface.

An adapter turns (image, quality setting) into the bytes of a real file and the pixels a
real decoder gives back. Nothing is estimated: bpp is always computed from those bytes.
Classical codecs are swept over settings chosen to cover roughly 0.1 to 2 bpp on Kodak.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import CodecError


@dataclass(frozen=True)
class Coded:
    data: bytes
    decoded: np.ndarray
    encode_s: float
    decode_s: float


@dataclass(frozen=True)
class Adapter:
    name: str
    description: str
    settings: tuple[float, ...]  # default sweep
    run: Callable[[np.ndarray, float], Coded]
    version: str  # goes into the cache key: a new version re-measures
    fitted: bool = False  # fitted at encode time: its streams are kept (re-timing a decode is cheap, a fit is not)

    def available(self) -> str | None:
        """None when usable, else a one-line reason."""
        return None


def _timed(encode: Callable[[], bytes], decode: Callable[[bytes], np.ndarray]) -> Coded:
    t0 = time.perf_counter()
    data = encode()
    t1 = time.perf_counter()
    out = decode(data)
    t2 = time.perf_counter()
    if out.ndim == 2:
        out = out[:, :, None]
    return Coded(data, np.ascontiguousarray(out[:, :, :3]), t1 - t0, t2 - t1)


def _pillow(fmt: str, **options) -> Callable[[np.ndarray, float], Coded]:
    from PIL import Image

    def run(img: np.ndarray, q: float) -> Coded:
        def enc() -> bytes:
            buf = io.BytesIO()
            src = Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img)
            src.save(buf, format=fmt, quality=int(q), **options)
            return buf.getvalue()

        def dec(b: bytes) -> np.ndarray:
            out = Image.open(io.BytesIO(b))
            return np.asarray(out.convert("L" if img.shape[2] == 1 else "RGB"))

        return _timed(enc, dec)

    return run


def _imagecodecs(kind: str) -> Callable[[np.ndarray, float], Coded]:
    def run(img: np.ndarray, q: float) -> Coded:
        import imagecodecs

        src = img[:, :, 0] if img.shape[2] == 1 else img
        if kind == "jxl":
            return _timed(lambda: bytes(imagecodecs.jpegxl_encode(src, distance=float(q), effort=7)),
                          imagecodecs.jpegxl_decode)
        # OpenJPEG's level is a target PSNR in dB, a float (imagecodecs' type stub says int)
        return _timed(lambda: bytes(imagecodecs.jpeg2k_encode(src, level=float(q))),  # type: ignore[arg-type]
                      imagecodecs.jpeg2k_decode)

    return run


def _lcodec(name: str, options: dict[str, object], verify: bool) -> Callable[[np.ndarray, float], Coded]:
    def run(img: np.ndarray, q: float) -> Coded:
        from .. import api

        # a codec fitted at encode time is checked on every image: the stream must decode to
        # exactly the encoder's reconstruction, and to the same pixels whatever the torch and
        # BLAS thread counts, or the measurement fails. Its decode time is the fastest of
        # those three decodes (the fits of other workers share the machine).
        coded = _timed(lambda: api.compress(img, name, int(q), verify, None, **options), api.decompress)
        if verify:
            import dataclasses

            import torch
            from threadpoolctl import threadpool_limits

            before = torch.get_num_threads()
            fastest = coded.decode_s
            try:
                for threads in (1, 2):
                    torch.set_num_threads(threads)
                    with threadpool_limits(limits=threads):
                        t0 = time.perf_counter()
                        again = api.decompress(coded.data)[:, :, :3]
                        fastest = min(fastest, time.perf_counter() - t0)
                    if not np.array_equal(again, coded.decoded):
                        raise CodecError(f"{name}: decoded pixels differ with {threads} threads")
            finally:
                torch.set_num_threads(before)
            coded = dataclasses.replace(coded, decode_s=fastest)
        return coded

    return run


def _rgb_to_yuv420(img: np.ndarray) -> bytes:
    """8-bit planar YCbCr 4:2:0 (BT.601 full range, as JFIF), chroma by 2x2 mean."""
    from PIL import Image

    h, w = img.shape[:2]
    ycc = np.asarray(Image.fromarray(img).convert("YCbCr")).astype(np.float64)
    ycc = np.pad(ycc, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    y = ycc[:h, :w, 0]
    c = ycc[:, :, 1:].reshape(ycc.shape[0] // 2, 2, ycc.shape[1] // 2, 2, 2).mean(axis=(1, 3))
    planes = [y, c[:, :, 0], c[:, :, 1]]
    return b"".join(np.round(p).clip(0, 255).astype(np.uint8).tobytes() for p in planes)


def _yuv420_to_rgb(raw: bytes, h: int, w: int) -> np.ndarray:
    from PIL import Image

    ch, cw = (h + 1) // 2, (w + 1) // 2
    a = np.frombuffer(raw, dtype=np.uint8)
    y = a[: h * w].reshape(h, w)
    u = a[h * w: h * w + ch * cw].reshape(ch, cw).repeat(2, 0).repeat(2, 1)[:h, :w]
    v = a[h * w + ch * cw: h * w + 2 * ch * cw].reshape(ch, cw).repeat(2, 0).repeat(2, 1)[:h, :w]
    return np.asarray(Image.fromarray(np.stack([y, u, v], axis=2), mode="YCbCr").convert("RGB"))


def _vvc(img: np.ndarray, q: float) -> Coded:
    """VVC through vvenc/vvdec's command-line tools, 8-bit 4:2:0 in and out."""
    h, w = img.shape[:2]
    rgb = img if img.shape[2] == 3 else np.repeat(img, 3, axis=2)
    with tempfile.TemporaryDirectory() as tmp:
        src, coded, out = (os.path.join(tmp, n) for n in ("in.yuv", "out.266", "out.yuv"))
        with open(src, "wb") as f:
            f.write(_rgb_to_yuv420(rgb))

        def enc() -> bytes:
            subprocess.run(["vvencapp", "-i", src, "-s", f"{w}x{h}", "-c", "yuv420", "-r", "1", "-f", "1",
                            "-q", str(int(q)), "-o", coded], check=True, capture_output=True)
            with open(coded, "rb") as f:
                return f.read()

        def dec(_: bytes) -> np.ndarray:
            subprocess.run(["vvdecapp", "-b", coded, "-o", out, "-d", "8"], check=True, capture_output=True)
            with open(out, "rb") as f:
                return _yuv420_to_rgb(f.read(), h, w)

        return _timed(enc, dec)


def _bpg(img: np.ndarray, q: float) -> Coded:
    """BPG through bpgenc/bpgdec (4:4:4), PNG in and out."""
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        src, coded, out = (os.path.join(tmp, n) for n in ("in.png", "out.bpg", "out.png"))
        Image.fromarray(img if img.shape[2] == 3 else img[:, :, 0]).save(src)

        def enc() -> bytes:
            subprocess.run(["bpgenc", "-f", "444", "-q", str(int(q)), "-o", coded, src], check=True,
                           capture_output=True)
            with open(coded, "rb") as f:
                return f.read()

        def dec(_: bytes) -> np.ndarray:
            subprocess.run(["bpgdec", "-o", out, coded], check=True, capture_output=True)
            return np.asarray(Image.open(out).convert("RGB" if img.shape[2] == 3 else "L"))

        return _timed(enc, dec)


class ExternalAdapter(Adapter):
    """A codec whose tools may be absent: then it is skipped with a one-line note."""

    def available(self) -> str | None:
        tools = {"vvc": ("vvencapp", "vvdecapp"), "bpg": ("bpgenc", "bpgdec")}[self.name]
        missing = [t for t in tools if shutil.which(t) is None]
        return f"{' and '.join(missing)} not on PATH" if missing else None


def _lcodec_version(factory: object) -> str:
    """Cache key part for our codecs: what decides the streams a new encode writes."""
    try:
        return str(factory.cache_key())  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - missing weights just mean no cached rows match
        return "unknown"


def _pil_version() -> str:
    import PIL

    return "pillow-" + PIL.__version__


def _ic_version() -> str:
    try:
        import imagecodecs

        return "imagecodecs-" + imagecodecs.__version__
    except ImportError:
        return "imagecodecs-missing"


def classical_adapters() -> dict[str, Adapter]:
    return {
        "jpeg": Adapter("jpeg", "JPEG (Pillow, optimize=True, 4:2:0)", (5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95),
                        _pillow("JPEG", optimize=True), _pil_version()),
        "webp": Adapter("webp", "WebP (Pillow, method=6)", (0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95),
                        _pillow("WEBP", method=6), _pil_version()),
        "avif": Adapter("avif", "AVIF (Pillow, speed=4)", (10, 20, 30, 40, 50, 60, 70, 80, 90),
                        _pillow("AVIF", speed=4), _pil_version()),
        "jxl": Adapter("jxl", "JPEG XL (imagecodecs/libjxl, effort 7, by distance)",
                       (12.0, 8.0, 6.0, 4.0, 3.0, 2.0, 1.5, 1.0, 0.7, 0.5), _imagecodecs("jxl"), _ic_version()),
        "jpeg2000": Adapter("jpeg2000", "JPEG 2000 (imagecodecs/OpenJPEG, by target PSNR)",
                            (24, 26, 28, 30, 32, 34, 36, 38, 40), _imagecodecs("j2k"), _ic_version()),
        "vvc": ExternalAdapter("vvc", "VVC (vvencapp/vvdecapp, 4:2:0 8-bit, by QP)", (22, 27, 32, 37, 42, 47),
                               _vvc, "vvenc"),
        "bpg": ExternalAdapter("bpg", "BPG (bpgenc/bpgdec, 4:4:4, by QP)", (22, 27, 32, 37, 42, 47), _bpg, "bpg"),
    }


def lcodec_adapter(name: str) -> Adapter:
    """Our codec ``name``, or one of a codec's named variants (an option set it declares)."""
    from ..registry import resolve_variant

    spec, found = resolve_variant(name)
    options: dict[str, object] = dict(found)
    if spec.lossless or spec.video:
        raise CodecError(f"{name} is not a lossy image codec; lossy image evaluation does not apply")
    if name == spec.name and spec.default_variant:  # named plainly: its default variant
        name = spec.default_variant
        options = dict(spec.variants[name])
    qualities = tuple(float(q) for q in spec.qualities)
    summary = spec.summary + "".join(f", {k} {v}" for k, v in options.items())
    version = _lcodec_version(spec.load()) + "".join(f"-{v}" for v in options.values())
    return Adapter(name, f"lcodec {name}: {summary}", qualities, _lcodec(spec.name, options, spec.fitted),
                   version, fitted=spec.fitted)


def image_hash(img: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(str(img.shape).encode())
    h.update(np.ascontiguousarray(img).tobytes())
    return h.hexdigest()[:24]
