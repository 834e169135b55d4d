"""Speed of the lossless HCLT coder: the path scheme (batched) against the naive full pass.

Efficient scheme: images per second for encoding and decoding a chunk of 256 test images and
a single image. Naive scheme (one upward pass over the whole circuit for every pixel and value,
O(D * |circuit|) per pixel): seconds for the conditionals of one whole image, which is a lower
bound of its encode time. Both use the shipped weights, in the same run.

    python benchmarks/pc_speed.py --codec pc-mnist --data ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codec", default="pc-mnist")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist")
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--naive-images", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pc_speed.json")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from codec.imageio import decode_idx
    from codec.pc.coding import decode_chunk, encode_chunk, naive_conditionals
    from codec.registry import get_codec

    impl = get_codec(args.codec).load().for_encoding()
    images = decode_idx((args.data / "t10k-images-idx3-ubyte.gz").read_bytes()).reshape(-1, 784)
    result: dict = {"codec": args.codec, "hidden": impl.model.hidden, "machine": platform.machine(),
                    "threads": 1}
    for label, batch in (("chunk", images[:args.chunk]), ("single", images[:1])):
        t0 = time.perf_counter()
        blob = encode_chunk(impl.model, batch)
        t1 = time.perf_counter()
        back = decode_chunk(impl.model, blob, len(batch))
        t2 = time.perf_counter()
        assert np.array_equal(back, batch)
        result[label] = {"images": len(batch), "encode_images_per_s": len(batch) / (t1 - t0),
                         "decode_images_per_s": len(batch) / (t2 - t1), "bytes": len(blob)}
        print(label, result[label], flush=True)
    t0 = time.perf_counter()
    for i in range(args.naive_images):
        naive_conditionals(impl.model, images[i])
    naive_s = (time.perf_counter() - t0) / args.naive_images
    result["naive"] = {"images": args.naive_images, "seconds_per_image_conditionals_only": naive_s,
                       "images_per_s": 1.0 / naive_s}
    result["speedup_encode_single"] = result["single"]["encode_images_per_s"] * naive_s
    result["speedup_encode_chunk"] = result["chunk"]["encode_images_per_s"] * naive_s
    print("naive", result["naive"], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(args.out.read_text()) if args.out.exists() else {}
    existing[args.codec] = result
    args.out.write_text(json.dumps(existing, indent=2) + "\n")


if __name__ == "__main__":
    main()
