"""Lossless evaluation on idx image sets: lcodec's lossless codecs against classical ones.

Every figure comes from real bytes and an exact decode check:

* **set**: the whole set in one file. lcodec writes one image-set stream; PNG, WebP,
  JPEG XL and JPEG 2000 code the set as one mosaic image (``MOSAIC_COLUMNS`` images a row);
  xz compresses the raw pixels of the set.
* **per image**: each image in a file of its own, headers included. For lcodec the per-image
  figure of the set run is each image's share of the stream (its information content under
  the integer tables); real single-image files are measured on the first ``single_files``
  images, so the per-file overhead is on record too.

Bits per dimension (bpd) = 8 * bytes / pixels.
"""

from __future__ import annotations

import csv
import io
import json
import lzma
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import CodecError

MOSAIC_COLUMNS = 100


@dataclass(frozen=True)
class LosslessBaseline:
    name: str
    description: str
    encode: Callable[[np.ndarray], bytes]  # HxW uint8 -> file bytes
    decode: Callable[[bytes], np.ndarray]
    version: str


def _pil_codec(fmt: str, **options) -> tuple[Callable[[np.ndarray], bytes], Callable[[bytes], np.ndarray]]:
    from PIL import Image

    def enc(img: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format=fmt, **options)
        return buf.getvalue()

    def dec(data: bytes) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(data)).convert("L"))

    return enc, dec


def lossless_baselines() -> dict[str, LosslessBaseline]:
    import imagecodecs
    import PIL

    png = _pil_codec("PNG", optimize=True, compress_level=9)
    webp = _pil_codec("WEBP", lossless=True, quality=100, method=6)
    return {
        "png": LosslessBaseline("png", "PNG (Pillow, optimize, level 9)", *png, f"pillow {PIL.__version__}"),
        "webp": LosslessBaseline("webp", "WebP lossless (Pillow, method 6, quality 100)", *webp,
                                 f"pillow {PIL.__version__}"),
        "jxl": LosslessBaseline("jxl", "JPEG XL lossless (libjxl via imagecodecs, effort 9)",
                                lambda a: bytes(imagecodecs.jpegxl_encode(a, lossless=True, effort=9)),
                                imagecodecs.jpegxl_decode, f"imagecodecs {imagecodecs.__version__}"),
        "jpeg2000": LosslessBaseline("jpeg2000", "JPEG 2000 lossless (OpenJPEG via imagecodecs, reversible, j2k)",
                                     lambda a: bytes(imagecodecs.jpeg2k_encode(a, reversible=True, codecformat="j2k")),
                                     imagecodecs.jpeg2k_decode, f"imagecodecs {imagecodecs.__version__}"),
        "xz": LosslessBaseline("xz", "xz on the raw pixels (preset 9e)",
                               lambda a: lzma.compress(np.ascontiguousarray(a).tobytes(),
                                                       preset=9 | lzma.PRESET_EXTREME),
                               lambda b: np.frombuffer(lzma.decompress(b), dtype=np.uint8), "python lzma"),
    }


def mosaic(images: np.ndarray, columns: int = MOSAIC_COLUMNS) -> np.ndarray:
    """(N, h, w) images as one (rows*h, columns*w) image, the last row padded with zeros."""
    n, h, w = images.shape
    rows = -(-n // columns)
    padded = np.zeros((rows * columns, h, w), dtype=np.uint8)
    padded[:n] = images
    return padded.reshape(rows, columns, h, w).transpose(0, 2, 1, 3).reshape(rows * h, columns * w)


def unmosaic(image: np.ndarray, n: int, h: int, w: int, columns: int = MOSAIC_COLUMNS) -> np.ndarray:
    rows = image.shape[0] // h
    return image.reshape(rows, h, columns, w).transpose(0, 2, 1, 3).reshape(rows * columns, h, w)[:n]


def _bpd(nbytes: float, pixels: int) -> float:
    return 8.0 * nbytes / pixels


def eval_baseline(b: LosslessBaseline, images: np.ndarray, progress: Callable[[int], None] | None = None
                  ) -> tuple[dict, np.ndarray]:
    n, h, w = images.shape
    sizes = np.zeros(n, dtype=np.int64)
    enc_s = dec_s = 0.0
    exact = 0
    for i in range(n):
        t0 = time.perf_counter()
        data = b.encode(images[i])
        t1 = time.perf_counter()
        out = np.asarray(b.decode(data)).reshape(h, w)
        dec_s += time.perf_counter() - t1
        enc_s += t1 - t0
        sizes[i] = len(data)
        exact += int(np.array_equal(out, images[i]))
        if progress:
            progress(1)
    if b.name == "xz":
        t0 = time.perf_counter()
        whole = b.encode(images)
        t1 = time.perf_counter()
        back = b.decode(whole).reshape(n, h, w)
        t2 = time.perf_counter()
    else:
        t0 = time.perf_counter()
        whole = b.encode(mosaic(images))
        t1 = time.perf_counter()
        back = unmosaic(np.asarray(b.decode(whole)), n, h, w)
        t2 = time.perf_counter()
    return {
        "codec": b.name, "description": b.description, "version": b.version,
        "set_bytes": len(whole), "set_bpd": _bpd(len(whole), n * h * w), "set_exact": bool(np.array_equal(back, images)),
        "set_encode_s": t1 - t0, "set_decode_s": t2 - t1,
        "per_image_bytes": int(sizes.sum()), "per_image_bpd": _bpd(sizes.sum(), n * h * w),
        "per_image_exact": exact, "per_image_encode_images_per_s": n / enc_s, "per_image_decode_images_per_s": n / dec_s,
    }, sizes


def eval_lcodec(name: str, images: np.ndarray, single_files: int = 100,
                progress: Callable[[int], None] | None = None) -> tuple[dict, np.ndarray]:
    from .. import api

    n, h, w = images.shape
    bits = np.zeros(n, dtype=np.float64)
    t0 = time.perf_counter()
    last = [0]

    def report(done: int, total: int, message: str) -> None:
        if progress:
            progress(done - last[0])
        last[0] = done

    enc = api.compress_image_set(images, codec=name, bits=bits, progress=report)
    t1 = time.perf_counter()
    back = api.decompress(enc.data)
    t2 = time.perf_counter()
    back = back.reshape(n, h, w)
    exact_set = int((back == images).all(axis=(1, 2)).sum())
    single = []
    for i in range(min(single_files, n)):
        data = api.compress(images[i], codec=name)
        if not np.array_equal(api.decompress(data)[:, :, 0], images[i]):
            raise CodecError(f"{name}: single-image round trip failed on image {i}")
        single.append(len(data))
    return {
        "codec": name, "description": f"lcodec {name} (one image-set stream)",
        "set_bytes": len(enc.data), "set_bpd": _bpd(len(enc.data), n * h * w), "set_exact": exact_set == n,
        "set_exact_images": exact_set, "set_encode_s": t1 - t0, "set_decode_s": t2 - t1,
        "set_encode_images_per_s": n / (t1 - t0), "set_decode_images_per_s": n / (t2 - t1),
        "per_image_bpd": float(bits.sum() / (n * h * w)),
        "per_image_note": "each image's share of the set stream (information content under the integer tables)",
        "single_files": len(single), "single_file_bytes_mean": float(np.mean(single)) if single else None,
        "single_file_bpd": _bpd(float(np.mean(single)), h * w) if single else None,
    }, bits / 8.0


def run_lossless_eval(idx_path: Path, codecs: list[str], baselines: list[str], out_dir: Path,
                      limit: int | None = None, single_files: int = 100,
                      progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Measure every codec on one idx file; write ``<stem>.json`` and ``<stem>.csv`` to ``out_dir``."""
    from ..imageio import decode_idx

    images = decode_idx(Path(idx_path).read_bytes(), str(idx_path))
    if limit:
        images = images[:limit]
    n = images.shape[0]
    table = lossless_baselines()
    unknown = [b for b in baselines if b not in table]
    if unknown:
        raise CodecError(f"unknown lossless baseline(s) {', '.join(unknown)} (known: {', '.join(table)})")
    def ticker(name: str) -> Callable[[int], None]:
        done = [0]

        def tick(k: int) -> None:
            done[0] += k
            if progress:
                progress(name, done[0], n)

        return tick

    results, per_image = [], {}
    runs = [(name, lambda name=name: eval_lcodec(name, images, single_files, ticker(name))) for name in codecs]
    runs += [(name, lambda name=name: eval_baseline(table[name], images, ticker(name))) for name in baselines]
    for name, run in runs:
        row, sizes = run()
        results.append(row)
        per_image[name] = sizes
    report = {
        "data": str(idx_path), "images": n, "height": int(images.shape[1]), "width": int(images.shape[2]),
        "machine": platform.processor() or platform.machine(), "results": results,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(idx_path).name.split(".")[0]
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    with open(out_dir / f"{stem}.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["image"] + [f"{c}_bpd" for c in per_image])
        pixels = images.shape[1] * images.shape[2]
        for i in range(n):
            wr.writerow([i] + [f"{8.0 * per_image[c][i] / pixels:.4f}" for c in per_image])
    return report


def format_report(report: dict) -> str:
    lines = [f"{report['data']}: {report['images']} images of {report['width']}x{report['height']}",
             f"{'codec':18s} {'set bpd':>8s} {'per-image bpd':>14s} {'exact':>6s}"]
    for r in report["results"]:
        exact = "yes" if r["set_exact"] and r.get("per_image_exact", report["images"]) == report["images"] else "NO"
        lines.append(f"{r['codec']:18s} {r['set_bpd']:8.4f} {r['per_image_bpd']:14.4f} {exact:>6s}")
    return "\n".join(lines)
