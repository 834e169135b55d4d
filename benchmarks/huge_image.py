"""Huge images: compress and decompress 8000x6000 in bounded memory, and check for seams.

The test image is a mosaic of Kodak photographs (mirrored copies, so the content is real
everywhere). Compression and decompression each run in a child process through the
``lcodec`` CLI, and the peak resident set size of each child is read from ``getrusage``.

Seams: an image small enough to code as one tile is also coded with a smaller tile size
(forced in-process), and the PSNR of both reconstructions against the original is compared.

Writes ``benchmarks/results/huge_image.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
KODAK = ROOT.parent / "shared" / "data" / "kodak"


def mosaic(width: int, height: int) -> np.ndarray:
    from codec.imageio import read_image

    tiles = [read_image(p) for p in sorted(KODAK.glob("*.png")) if read_image(p).shape[:2] == (512, 768)]
    out = np.empty((height, width, 3), np.uint8)
    k = 0
    for y in range(0, height, 512):
        for x in range(0, width, 768):
            t = tiles[k % len(tiles)]
            t = t[:, ::-1] if (k // len(tiles)) % 2 else t
            k += 1
            h, w = min(512, height - y), min(768, width - x)
            out[y:y + h, x:x + w] = t[:h, :w]
    return out


_CHILD = (
    "import resource, sys\n"
    "from cli.main import main\n"
    "try:\n"
    "    main(sys.argv[1:], standalone_mode=False)\n"
    "finally:\n"
    "    print('PEAK_RSS_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def run_child(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one CLI run in its own process."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, *args], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    peak = [line.split()[1] for line in proc.stderr.splitlines() if line.startswith("PEAK_RSS_KIB")]
    return wall, int(peak[-1]) / 1024.0


def seam_check(quality: int) -> dict:
    import codec.hyperprior.coding as hc
    from codec.imageio import read_image
    from codec.metrics import psnr

    img = np.concatenate([read_image(KODAK / "kodim01.png"), read_image(KODAK / "kodim02.png")], axis=1)[:, :1000]
    impl = hc.load_codec()
    whole_grid = hc.TileGrid.for_image(img.shape[1], img.shape[0])
    assert whole_grid.rows * whole_grid.cols == 1
    _, whole = impl.encode_rgb(img, quality, reconstruct=True)
    saved = hc.TileGrid.for_image
    try:
        hc.TileGrid.for_image = classmethod(lambda cls, w, h, tile=16: saved.__func__(cls, w, h, 16))
        sections, tiled = impl.encode_rgb(img, quality, reconstruct=True)
    finally:
        hc.TileGrid.for_image = saved
    return {"image": f"{img.shape[1]}x{img.shape[0]} (kodim01|kodim02)", "quality": quality,
            "tiles_small": len(sections) - 2, "psnr_one_tile": psnr(img, whole), "psnr_tiled_256px": psnr(img, tiled),
            "psnr_drop_db": psnr(img, whole) - psnr(img, tiled),
            "identical_pixels": bool(np.array_equal(whole, tiled))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=8000)
    ap.add_argument("--height", type=int, default=6000)
    ap.add_argument("-q", "--quality", type=int, default=3)
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "benchmarks" / "results" / "huge_image.json")
    args = ap.parse_args()
    from PIL import Image

    from codec.imageio import read_image
    from codec.metrics import psnr

    with tempfile.TemporaryDirectory() as tmp:
        src, stream, out = (os.path.join(tmp, n) for n in ("in.png", "s.lcd", "out.png"))
        img = mosaic(args.width, args.height)
        Image.fromarray(img).save(src, compress_level=1)
        enc_s, enc_rss = run_child(["compress", src, "-o", stream, "-q", str(args.quality)])
        dec_s, dec_rss = run_child(["decompress", stream, "-o", out])
        size = os.path.getsize(stream)
        quality_db = psnr(img, read_image(out))
    result = {
        "size": f"{args.width}x{args.height}", "quality": args.quality, "bytes": size,
        "bpp": 8.0 * size / (args.width * args.height), "psnr": quality_db,
        "compress_seconds": enc_s, "compress_peak_rss_mib": enc_rss,
        "decompress_seconds": dec_s, "decompress_peak_rss_mib": dec_rss,
        "seams": seam_check(args.quality),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
