"""Colour fidelity of a lossy codec: mean error per channel on saturated colours.

Synthetic images: the six primary and secondary colours at full and at half saturation,
each a flat field beside a smooth gradient to the next colour, with mild noise (sigma 3) so
that they are not trivially flat; and one photograph with its saturation boosted 1.6x
(Pillow's ImageEnhance.Color on kodim23, the parrots). Each is coded at every quality; the
figures are the mean signed error of each channel (decoded minus original, in 8-bit levels),
PSNR-RGB and bpp from the real stream. A codec that pulls saturated colours towards grey
shows it here as a large mean error (the green of magenta rising, for example).

    python benchmarks/colour_fidelity.py --codec hyperprior
Writes ``benchmarks/results/colour_fidelity-CODEC.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLOURS = {"red": (255, 0, 0), "yellow": (255, 255, 0), "green": (0, 255, 0), "cyan": (0, 255, 255),
           "blue": (0, 0, 255), "magenta": (255, 0, 255)}


def synthetic_images(size: int = 128, seed: int = 0) -> dict[str, np.ndarray]:
    """name -> HxWx3 uint8: each colour at full and half saturation, flat beside a gradient."""
    rng = np.random.default_rng(seed)
    names = list(COLOURS)
    out = {}
    for sat in (1.0, 0.5):
        for i, name in enumerate(names):
            def tone(rgb: tuple[int, int, int]) -> np.ndarray:
                c = np.array(rgb, dtype=np.float64)
                grey = c @ np.array([0.299, 0.587, 0.114])
                return grey + sat * (c - grey)

            a, b = tone(COLOURS[name]), tone(COLOURS[names[(i + 1) % len(names)]])
            img = np.empty((size, size, 3))
            img[:, : size // 2] = a
            t = np.linspace(0.0, 1.0, size - size // 2)[None, :, None]
            img[:, size // 2:] = a + t * (b - a)
            img += rng.normal(0.0, 3.0, img.shape)
            out[f"{name}-{'full' if sat == 1.0 else 'half'}"] = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return out


def saturated_photo(kodak: Path, factor: float = 1.6) -> np.ndarray:
    from PIL import Image, ImageEnhance

    img = Image.open(kodak / "kodim23.png").convert("RGB")
    return np.asarray(ImageEnhance.Color(img).enhance(factor))


def measure(codec_name: str, images: dict[str, np.ndarray], qualities: list[int]) -> dict:
    import codec
    from codec.metrics import psnr

    rows = {}
    for name, img in images.items():
        for q in qualities:
            data = codec.compress(img, codec=codec_name, quality=q)
            dec = codec.decompress(data)
            err = dec.astype(np.float64).mean(axis=(0, 1)) - img.astype(np.float64).mean(axis=(0, 1))
            rows.setdefault(name, {})[str(q)] = {
                "mean_error_rgb": [round(float(e), 3) for e in err], "psnr": round(psnr(img, dec), 3),
                "bpp": round(8.0 * len(data) / (img.shape[0] * img.shape[1]), 4)}
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codec", default="hyperprior")
    ap.add_argument("--kodak", type=Path, default=ROOT.parent / "shared" / "data" / "kodak")
    ap.add_argument("-o", "--output", type=Path, default=None)
    args = ap.parse_args()

    import codec

    spec = codec.get_codec(args.codec)
    images = synthetic_images()
    images["kodim23-saturated-1.6x"] = saturated_photo(args.kodak)
    rows = measure(args.codec, images, list(spec.qualities))
    worst = max(abs(e) for r in rows.values() for m in r.values() for e in m["mean_error_rgb"])
    result = {"codec": args.codec, "qualities": list(spec.qualities), "worst_mean_channel_error": worst,
              "images": rows}
    out = args.output or ROOT / "benchmarks" / "results" / f"colour_fidelity-{args.codec}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    for name, r in rows.items():
        cells = " ".join(f"q{q}:{'/'.join(f'{e:+.1f}' for e in m['mean_error_rgb'])}" for q, m in r.items())
        print(f"{name:24s} {cells}")
    print(f"worst mean channel error: {worst:.2f} levels; wrote {out}")


if __name__ == "__main__":
    main()
