"""Rate-distortion on Kodak: the hyperprior against JPEG and WebP, measured in one run.

Every figure comes from real files and decoded pixels (the adapters of
``codec.evaluation``): bpp is 8 * (bytes of the file) / pixels, PSNR-RGB and MS-SSIM are
computed on the decoded 8-bit images, and encode/decode seconds are wall time per image.
JPEG is Pillow with ``optimize=True``, WebP is Pillow with ``method=6``; both are swept over
enough settings to cover the hyperprior's range. BD-rate uses :func:`codec.metrics.bd_rate`.

Writes ``benchmarks/results/kodak_rd.json``: per-quality means, BD-rates, the protocol,
and the per-image rows (measurements are cached in ``benchmarks/results/kodak/cache.jsonl``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KODAK = ROOT.parent / "shared" / "data" / "kodak"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, default=KODAK, help="folder of test images (default: Kodak)")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N images (0: all)")
    ap.add_argument("-j", "--jobs", type=int, default=1)
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "benchmarks" / "results" / "kodak_rd.json")
    args = ap.parse_args()

    import PIL
    import torch
    from tqdm import tqdm

    from codec.evaluation.adapters import classical_adapters, lcodec_adapter
    from codec.evaluation.runner import bd_table, curves, expand_images, run_eval

    images = expand_images([str(args.images)])
    if args.limit:
        images = images[: args.limit]
    ours = lcodec_adapter("hyperprior")
    classical = classical_adapters()
    specs = [(ours, list(ours.settings)), (classical["jpeg"], list(classical["jpeg"].settings)),
             (classical["webp"], list(classical["webp"].settings))]
    bar = tqdm(total=1, unit="job", desc="kodak", disable=None)

    def progress(done: int, total: int, what: str) -> None:
        bar.total, bar.n = total, done
        bar.set_postfix_str(what[:40])
        bar.refresh()

    cache_dir = args.output.parent / "kodak"  # shared with `lcodec eval -o benchmarks/results/kodak`
    rows = run_eval(images, specs, cache_dir, workers=args.jobs, progress=progress)
    bar.close()
    summary = curves(rows, {a.name: a.description for a, _ in specs})
    tables = {m: bd_table(summary, m) for m in ("psnr", "ms-ssim")}
    bd = {f"hyperprior vs {ref}": {m: tables[m]["hyperprior"].get(ref) for m in tables} for ref in ("jpeg", "webp")}

    from codec.hyperprior.weights import installed_weights

    w = max(installed_weights(), key=lambda w: int(w.manifest.get("steps", 0)))
    result = {
        "protocol": {
            "images": [p.name for p in images], "bpp": "8 * file bytes / (width * height)",
            "psnr": "PSNR-RGB over 8-bit decoded pixels", "ms_ssim": "pytorch_msssim, data_range 255, RGB",
            "jpeg": classical["jpeg"].description, "webp": classical["webp"].description,
            "machine": platform.machine(), "cores": os.cpu_count(), "python": platform.python_version(),
            "pillow": PIL.__version__, "torch": torch.__version__, "workers": args.jobs,
            "hyperprior_weights": {"sha256": w.sha256, "steps": w.manifest.get("steps")},
        },
        "results": {k: v["results"] for k, v in summary.items()},
        "bd_rate_percent": bd,
        "bd_rate_tables_percent": tables,
        "rows": [asdict(r) for r in rows if r.image in {p.name for p in images}],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")

    for name, c in summary.items():
        res = c["results"]
        print(f"\n{name}")
        print(f"{'q':>5s} {'bpp':>7s} {'PSNR':>7s} {'MS-SSIM':>8s} {'enc s':>7s} {'dec s':>7s}")
        for i, q in enumerate(res["quality"]):
            print(f"{q:5g} {res['bpp'][i]:7.4f} {res['psnr-rgb'][i]:7.2f} {res['ms-ssim'][i]:8.4f} "
                  f"{res['encoding_time'][i]:7.3f} {res['decoding_time'][i]:7.3f}")
    for k, v in bd.items():
        fmt = lambda x: "n/a (no overlap)" if x is None or x != x else f"{x:+.1f}%"  # noqa: E731
        print(f"BD-rate {k}: PSNR {fmt(v['psnr'])}, MS-SSIM {fmt(v['ms-ssim'])}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
