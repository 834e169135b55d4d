"""Write the conformance streams and their manifest.

Each stream is a small real image (crops of Kodak images) coded by a shipped codec; the
manifest records the SHA-256 of the stream and of the decoded pixels. ``tests/bitstreams``
decodes every stream and compares. Existing streams are never replaced unless
``--regenerate`` is given (for example after shipping new weights, which changes every stream).

    python bitstreams/conformance/make.py --regenerate
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

#: (name, Kodak image, top, left, height, width, grayscale, codec, quality)
CASES = [
    ("hyperprior-q1-rgb", "kodim05.png", 200, 300, 48, 64, False, "hyperprior", 1),
    ("hyperprior-q6-rgb", "kodim05.png", 200, 300, 48, 64, False, "hyperprior", 6),
    ("hyperprior-q3-odd", "kodim20.png", 111, 222, 37, 53, False, "hyperprior", 3),
    ("hyperprior-q4-gray", "kodim08.png", 64, 128, 40, 40, True, "hyperprior", 4),
    ("hyperprior-q2-1x1", "kodim01.png", 0, 0, 1, 1, False, "hyperprior", 2),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kodak", type=Path, default=ROOT.parent / "shared" / "data" / "kodak")
    ap.add_argument("--regenerate", action="store_true", help="replace existing streams")
    args = ap.parse_args()

    import codec
    from codec.imageio import read_image

    manifest_path = HERE / "manifest.json"
    if manifest_path.exists() and not args.regenerate:
        sys.exit("conformance streams exist; pass --regenerate to replace them")
    manifest = {}
    for name, image, top, left, h, w, gray, codec_name, q in CASES:
        img = read_image(args.kodak / image)[top:top + h, left:left + w]
        if gray:
            img = ((img.astype(int).sum(axis=2) + 1) // 3).astype("uint8")
        data = codec.compress(img, codec=codec_name, quality=q, verify=True)
        pixels = codec.decompress(data)
        (HERE / f"{name}.lcd").write_bytes(data)
        manifest[name] = {
            "stream": f"{name}.lcd", "stream_sha256": hashlib.sha256(data).hexdigest(),
            "decoded_sha256": hashlib.sha256(pixels.tobytes()).hexdigest(), "shape": list(pixels.shape),
            "codec": codec_name, "quality": q, "source": f"{image}[{top}:{top + h}, {left}:{left + w}]"
                                                         + (" as gray" if gray else ""),
        }
        print(f"{name}: {len(data)} bytes, {pixels.shape}")
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
