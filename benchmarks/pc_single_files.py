"""Per-file cost of single-image lossless streams: every 20th test image in a file of its own.

Counts every byte of each file (container, sections, rANS flush) and reports bits per pixel
over the 500 files, beside the information content of the same images inside one set stream,
so the container's per-file overhead is visible. Writes ``benchmarks/results/pc_single_files.json``.

    python benchmarks/pc_single_files.py --codec pc-mnist
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codec", default="pc-mnist")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz")
    ap.add_argument("--step", type=int, default=20)
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "benchmarks" / "results" / "pc_single_files.json")
    args = ap.parse_args()

    import numpy as np

    import codec
    from codec.container import container_overhead, read_container
    from codec.imageio import decode_idx

    images = decode_idx(args.data.read_bytes())[::args.step]
    sizes, overheads = [], []
    for img in images:
        data = codec.compress(img, codec=args.codec)
        if not np.array_equal(codec.decompress(data)[:, :, 0], img):
            raise SystemExit("round trip failed")
        parsed = read_container(data)
        sizes.append(len(data))
        overheads.append(container_overhead(parsed.header, [len(s) for s in parsed.sections]))
    bits = np.zeros(len(images))
    codec.compress_image_set(images, codec=args.codec, bits=bits)
    pixels = images.shape[1] * images.shape[2]
    result = {
        "codec": args.codec, "files": len(images), "source": f"{args.data.name}[::{args.step}]",
        "format_version": codec.info(codec.compress(images[0], codec=args.codec))["format_version"],
        "mean_file_bytes": float(np.mean(sizes)), "bpp_per_file": 8 * float(np.mean(sizes)) / pixels,
        "mean_container_bytes": float(np.mean(overheads)),
        "information_content_bpp": float(bits.sum() / (len(images) * pixels)),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
