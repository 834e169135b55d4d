"""Check of the evaluation itself: our Pillow JPEG and WebP curves against CompressAI's.

Reads our measured curves (``benchmarks/results/kodak/{jpeg,webp}.json``, written by
``lcodec eval``) and CompressAI's published Kodak curves (``benchmarks/published/kodak``),
and reports the BD-rate between them. Our JPEG uses ``optimize=True`` (optimised Huffman
tables) while CompressAI's used Pillow's default; to separate that effect the script also
codes Kodak with ``optimize=False`` and compares that curve to the published one.
Writes ``benchmarks/results/eval_check.json``.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from PIL import Image

    from codec.evaluation.runner import expand_images, load_published
    from codec.imageio import read_image
    from codec.metrics import bd_rate, psnr

    out = {}
    for name in ("jpeg", "webp"):
        ours = json.loads((ROOT / "benchmarks" / "results" / "kodak" / f"{name}.json").read_text())["results"]
        pub = load_published(ROOT / "benchmarks" / "published" / "kodak" / f"{name}.json")["results"]
        out[f"{name}: ours vs CompressAI published"] = {
            "psnr": bd_rate(pub["bpp"], pub["psnr-rgb"], ours["bpp"], ours["psnr-rgb"]),
            "ms-ssim": bd_rate(pub["bpp"], pub["ms-ssim-db"], ours["bpp"], ours["ms-ssim-db"]),
        }
    images = [read_image(p) for p in expand_images([str(ROOT.parent / "shared" / "data" / "kodak")])]
    curves = {}
    for optimize in (False, True):
        bpp, quality = [], []
        for q in (5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95):
            b, p = [], []
            for im in images:
                buf = io.BytesIO()
                Image.fromarray(im).save(buf, format="JPEG", quality=q, optimize=optimize)
                data = buf.getvalue()
                b.append(8 * len(data) / (im.shape[0] * im.shape[1]))
                p.append(psnr(im, np.asarray(Image.open(io.BytesIO(data)))))
            bpp.append(float(np.mean(b)))
            quality.append(float(np.mean(p)))
        curves[optimize] = (bpp, quality)
    pub = load_published(ROOT / "benchmarks" / "published" / "kodak" / "jpeg.json")["results"]
    out["jpeg optimize=True vs optimize=False (ours)"] = {"psnr": bd_rate(*curves[False], *curves[True])}
    out["jpeg optimize=False (ours) vs CompressAI published"] = {
        "psnr": bd_rate(pub["bpp"], pub["psnr-rgb"], *curves[False])}
    path = ROOT / "benchmarks" / "results" / "eval_check.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    for k, v in out.items():
        print(f"{k}: " + ", ".join(f"{m} {x:+.1f}%" for m, x in v.items()))


if __name__ == "__main__":
    main()
