"""Write the conformance streams and their manifest.

Each stream is a small real image (crops of Kodak images, or MNIST digits) coded by a shipped
codec; the manifest records the SHA-256 of the stream and of the decoded pixels.
``tests/bitstreams`` decodes every stream and compares, and re-encodes the current format's
sources to check the encoder is stable too. Streams of the current container version live in
``v2/``; ``v1/`` holds the version 1 streams, frozen: they must keep decoding as they are and
are never rewritten. Existing streams are never replaced unless ``--regenerate`` names them
(for example after shipping new weights, which changes every stream of that codec); new
cases are added. A new codec adds its cases to ``CASES``.

    python bitstreams/conformance/make.py                         # add missing streams
    python bitstreams/conformance/make.py --regenerate hyperprior  # replace the hyperprior ones
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CURRENT = HERE / "v2"  # streams of the container version new files are written in
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

#: (name, source, codec, quality, encoder options); a source is a Kodak crop
#: "kodimNN.png[top:bottom, left:right]" (optionally " as gray") or an idx slice
#: "mnist/t10k-images-idx3-ubyte.gz[first:last]"
CASES = [
    ("hyperprior-q1-rgb", "kodim05.png[200:248, 300:364]", "hyperprior", 1, {}),
    ("hyperprior-q6-rgb", "kodim05.png[200:248, 300:364]", "hyperprior", 6, {}),
    ("hyperprior-q3-odd", "kodim20.png[111:148, 222:275]", "hyperprior", 3, {}),
    ("hyperprior-q4-gray", "kodim08.png[64:104, 128:168] as gray", "hyperprior", 4, {}),
    ("hyperprior-q2-1x1", "kodim01.png[0:1, 0:1]", "hyperprior", 2, {}),
    ("pc-mnist-one", "mnist/t10k-images-idx3-ubyte.gz[0:1]", "pc-mnist", None, {}),
    ("pc-mnist-set", "mnist/t10k-images-idx3-ubyte.gz[1:259]", "pc-mnist", None, {}),
    ("pc-fashion-mnist-one", "fashion-mnist/t10k-images-idx3-ubyte.gz[0:1]", "pc-fashion-mnist", None, {}),
    ("pc-fashion-mnist-set", "fashion-mnist/t10k-images-idx3-ubyte.gz[1:259]", "pc-fashion-mnist", None, {}),
    ("overfit-target-rate", "kodim23.png[100:164, 200:296]", "overfit", None, {"iterations": 30, "target_bpp": 4.0}),
    ("overfit-q2-rgb", "kodim23.png[100:132, 200:248]", "overfit", 2, {"iterations": 40}),
    ("overfit-q5-odd", "kodim15.png[50:71, 90:123]", "overfit", 5, {"iterations": 40}),
    ("mlicv2-q2-rgb", "kodim05.png[200:248, 300:364]", "mlicv2", 2, {}),
    ("mlicv2-q5-odd", "kodim20.png[111:148, 222:275]", "mlicv2", 5, {}),
    ("mlicv2-q4-gray", "kodim08.png[64:104, 128:168] as gray", "mlicv2", 4, {}),
    ("s2lic-q2-rgb", "kodim05.png[200:248, 300:364]", "s2lic", 2, {}),
    ("s2lic-q5-odd", "kodim20.png[111:148, 222:275]", "s2lic", 5, {}),
    ("s2lic-q4-gray", "kodim08.png[64:104, 128:168] as gray", "s2lic", 4, {}),
]


def load_source(source: str, data_dir: Path):
    """The pixels a case codes (HxWxC, HxW or NxHxW uint8)."""
    import numpy as np

    from codec.imageio import decode_idx, read_image

    name, rest = source.split("[", 1)
    rng, tail = rest.split("]", 1)
    if ".gz" in name or "idx" in name:
        a, b = (int(v) for v in rng.split(":"))
        images = decode_idx((data_dir / name).read_bytes())[a:b]
        return images[0] if len(images) == 1 else images
    rows, cols = rng.split(", ")
    t, bt = (int(v) for v in rows.split(":"))
    le, r = (int(v) for v in cols.split(":"))
    img = read_image(data_dir / "kodak" / name)[t:bt, le:r]
    if tail.strip() == "as gray":
        img = ((img.astype(int).sum(axis=2) + 1) // 3).astype(np.uint8)
    return img


def encode_case(source: str, codec_name: str, quality: int | None, options: dict, data_dir: Path) -> bytes:
    """An NxHxW source is an image set; anything else one image."""
    import codec

    pixels = load_source(source, data_dir)
    return codec.compress_image(pixels, codec=codec_name, quality=quality, verify=True, **options).data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--regenerate", nargs="*", metavar="PREFIX",
                    help="replace existing streams (all, or those whose name starts with a PREFIX)")
    args = ap.parse_args()

    import codec

    CURRENT.mkdir(exist_ok=True)
    manifest_path = CURRENT / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    for name, source, codec_name, q, options in CASES:
        replace = args.regenerate is not None and (not args.regenerate or any(name.startswith(p) for p in args.regenerate))
        if name in manifest and not replace:
            continue
        data = encode_case(source, codec_name, q, options, args.data)
        pixels = codec.decompress(data)
        (CURRENT / f"{name}.lcd").write_bytes(data)
        manifest[name] = {
            "stream": f"{name}.lcd", "stream_sha256": hashlib.sha256(data).hexdigest(),
            "decoded_sha256": hashlib.sha256(pixels.tobytes()).hexdigest(), "shape": list(pixels.shape),
            "codec": codec_name, "quality": q, "source": source, "options": options,
        }
        print(f"{name}: {len(data)} bytes, {pixels.shape}")
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
