"""Decode seconds per image of several codecs, interleaved in one run.

The machine's speed swings several-fold, so the codecs are timed in alternation, image by
image and round by round, and each is reported by its median: a slow spell hits all alike.
Streams are encoded once, then only ``codec.decompress`` is timed.

    python benchmarks/decode_time.py --codec hyperprior --codec mlicv2 -q 3 --rounds 3 \\
        ../shared/data/kodak -o benchmarks/results/mlicv2/decode_time.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import codec  # noqa: E402
from codec.evaluation.runner import expand_images  # noqa: E402
from codec.imageio import read_image  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="+")
    ap.add_argument("--codec", action="append", required=True)
    ap.add_argument("-q", "--quality", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="only the first N images")
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args()
    files = expand_images(args.images)[:args.limit]
    streams = {(c, str(f)): codec.compress(read_image(f), codec=c, quality=args.quality)
               for f in files for c in args.codec}
    for c in args.codec:  # warm: weights loaded, integer networks built
        codec.decompress(streams[c, str(files[0])])
    times: dict[str, dict[str, list[float]]] = {c: {str(f): [] for f in files} for c in args.codec}
    for _ in range(args.rounds):
        for f in files:
            for c in args.codec:
                t0 = time.perf_counter()
                codec.decompress(streams[c, str(f)])
                times[c][str(f)].append(time.perf_counter() - t0)
    result = {"quality": args.quality, "rounds": args.rounds, "images": len(files),
              "machine": platform.processor() or platform.machine(), "codecs": {}}
    for c in args.codec:
        per_image = {Path(f).name: statistics.median(v) for f, v in times[c].items()}
        result["codecs"][c] = {"median_decode_s": round(statistics.median(per_image.values()), 4),
                               "mean_decode_s": round(statistics.fmean(per_image.values()), 4),
                               "bytes": sum(len(streams[c, str(f)]) for f in files),
                               "per_image_s": {k: round(v, 4) for k, v in per_image.items()}}
    base = result["codecs"][args.codec[0]]["median_decode_s"]
    for c in args.codec:
        r = result["codecs"][c]
        r["ratio_to_first"] = round(r["median_decode_s"] / base, 3)
        print(f"{c:20s} median {r['median_decode_s']:.3f} s/image  ({r['ratio_to_first']:.2f}x {args.codec[0]})")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
