"""The overfitted codec on Kodak: rate, quality, exactness, encode and decode time.

Each image is fitted, written as a real stream, decoded by a fresh decoder call and compared
bit for bit with the encoder's own reconstruction (``verify``); bpp from the stream's bytes,
PSNR from the decoded pixels. Results are appended per image to the JSON, so a long run
resumes where it stopped.

    python benchmarks/overfit_kodak.py --preset fast --quality 3 --images kodim01,kodim02
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "kodak"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="fast", choices=["fast", "medium", "slow"])
    ap.add_argument("--iterations", type=int, default=None, help="override the preset's iteration count")
    ap.add_argument("--quality", type=int, nargs="+", default=[3])
    ap.add_argument("--images", default="all", help="comma-separated Kodak names, or 'all'")
    ap.add_argument("--kodak", type=Path, default=KODAK)
    ap.add_argument("--threads", type=int, default=2, help="torch threads for fitting")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "overfit_kodak.json")
    args = ap.parse_args()

    import torch

    import codec
    from codec.imageio import read_image
    from codec.metrics import psnr
    from codec.overfit.model import macs_per_pixel

    torch.set_num_threads(args.threads)
    names = sorted(p.stem for p in args.kodak.glob("kodim*.png")) if args.images == "all" else args.images.split(",")
    results = json.loads(args.out.read_text()) if args.out.exists() else {"runs": []}
    done = {(r["image"], r["preset"], r["iterations"], r["quality"]) for r in results["runs"]}
    for q in args.quality:
        for name in names:
            img = read_image(args.kodak / f"{name}.png")
            iters = args.iterations
            key = (name, args.preset, iters, q)
            if key in done:
                continue
            t0 = time.perf_counter()
            enc = codec.compress_image(img, codec="overfit", quality=q, preset=args.preset, iterations=iters,
                                       verify=True)  # verify: the decoder reproduces the encoder's pixels
            t1 = time.perf_counter()
            out = codec.decompress(enc.data)
            t2 = time.perf_counter()
            row = {"image": name, "preset": args.preset, "iterations": iters, "quality": q,
                   "bytes": len(enc.data), "bpp": enc.bits_per_pixel, "psnr": psnr(img, out),
                   "exact": True, "encode_s": t1 - t0, "decode_s": t2 - t1,
                   "macs_per_pixel": macs_per_pixel(*img.shape[:2])["total"]}
            print(json.dumps(row), flush=True)
            results["runs"].append(row)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")
    runs = results["runs"]
    if runs:
        print(f"{len(runs)} runs, mean bpp {np.mean([r['bpp'] for r in runs]):.4f}, "
              f"mean PSNR {np.mean([r['psnr'] for r in runs]):.2f} dB")


if __name__ == "__main__":
    main()
