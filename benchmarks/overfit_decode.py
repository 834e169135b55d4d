"""Decode time of the overfitted codec on the streams ``lcodec eval`` kept.

For every stream under ``RESULTS/streams/overfit-*/``: the best of ``--repeats`` in-process
decodes (``codec.decompress``), the decoded pixels checked against the eval's PSNR for that
image and setting, and, for the first ``--cli`` streams, the wall time of a whole
``lcodec decompress`` process (imports included), whose output must be pixel-identical. Run it on an otherwise idle machine: the
eval itself times decodes while other fits share the CPU.

    python benchmarks/overfit_decode.py benchmarks/results/overfit --images ../shared/data/kodak
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="an eval output folder (with streams/ and per_image.csv)")
    ap.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "data" / "kodak")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cli", type=int, default=3, help="streams also timed as a whole lcodec decompress process")
    ap.add_argument("--out", type=Path, default=None, help="default: RESULTS/decode_time.json")
    args = ap.parse_args()

    import codec
    from codec.imageio import read_image
    from codec.metrics import psnr

    streams = sorted(args.results.glob("streams/overfit-*/*.lcd"))
    if not streams:
        sys.exit(f"no overfit streams under {args.results}/streams: run lcodec eval with --codec overfit-PRESET")
    recorded = {}
    per_image = args.results / "per_image.csv"
    if per_image.exists():
        with open(per_image) as f:
            for r in csv.DictReader(f):
                recorded[(r["codec"], Path(r["image"]).stem, float(r["setting"]))] = float(r["psnr_rgb"])
    rows = []
    for k, path in enumerate(streams):
        preset = path.parent.name
        stem, _, setting = path.stem.rpartition("-")
        data = path.read_bytes()
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = codec.decompress(data)
            best = min(best, time.perf_counter() - t0)
        img = read_image(args.images / f"{stem}.png")
        quality = psnr(img, out)
        want = recorded.get((preset, stem, float(setting)))
        if want is not None and abs(want - quality) > 1e-6:
            sys.exit(f"{path}: decodes to {quality:.4f} dB, the eval recorded {want:.4f} dB")
        row = {"codec": preset, "image": stem, "setting": float(setting), "bytes": len(data),
               "bpp": 8.0 * len(data) / (out.shape[0] * out.shape[1]), "psnr_rgb": quality,
               "decode_s": best}
        if k < args.cli:
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "cli.main", "decompress", str(path), "-o",
                                str(Path(tmp) / "out.png")], check=True, cwd=ROOT)
                row["cli_decode_s"] = time.perf_counter() - t0
                if not np.array_equal(read_image(Path(tmp) / "out.png"), out):
                    sys.exit(f"{path}: the CLI process decoded other pixels than this one")
                row["cli_pixels_identical"] = True
        rows.append(row)
        print(f"{preset} {stem} q{setting}: {row['bpp']:.4f} bpp, {quality:.2f} dB, decode {best:.3f} s"
              + (f", whole CLI process {row['cli_decode_s']:.3f} s" if "cli_decode_s" in row else ""), flush=True)
    times = np.array([r["decode_s"] for r in rows])
    summary = {"streams": len(rows), "mean_decode_s": float(times.mean()), "max_decode_s": float(times.max()),
               "under_1s": int((times < 1.0).sum()), "repeats": args.repeats,
               "machine": platform.machine(), "python": platform.python_version()}
    print(json.dumps(summary))
    dest = args.out or args.results / "decode_time.json"
    dest.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
