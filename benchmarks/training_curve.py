"""How Kodak quality grows with training steps.

Evaluates training snapshots (``snapshot_*.pt`` in a run folder, plus its checkpoint) on
Kodak with real coding: each snapshot is exported exactly as shipped weights are (float16
weights, integer tables), every image is compressed to a container and decoded, and bpp
and PSNR come from those bytes and pixels. Writes ``benchmarks/results/training_curve.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "data" / "kodak")
    ap.add_argument("--qualities", default="1,3,6")
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "benchmarks" / "results" / "training_curve.json")
    args = ap.parse_args()

    import torch

    from codec.hyperprior.evaluate import evaluate_weights
    from codec.hyperprior.model import HyperpriorConfig, MeanScaleHyperprior
    from codec.hyperprior.weights import export_weights

    snaps = sorted(args.run_dir.glob("snapshot_*.pt"))
    if (args.run_dir / "checkpoint.pt").exists():
        snaps.append(args.run_dir / "checkpoint.pt")
    qualities = [int(q) for q in args.qualities.split(",")]
    points = []
    for snap in snaps:
        state = torch.load(snap, map_location="cpu", weights_only=True)
        model = MeanScaleHyperprior(HyperpriorConfig.from_json(state["config"]))
        model.load_state_dict(state["model"])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "hyperprior-snapshot.safetensors"
            export_weights(model, path, {"steps": int(state["step"])})
            res = evaluate_weights(path, args.images, qualities, log=lambda s: None)
        point = {"step": int(state["step"]), "wall_seconds": round(float(state["wall"]), 1),
                 "kodak": {str(q): r for q, r in res.items()}}
        points.append(point)
        print(f"step {point['step']:6d} ({point['wall_seconds'] / 60:5.1f} min): "
              + "  ".join(f"q{q} {r['bpp']:.3f} bpp {r['psnr']:.2f} dB" for q, r in res.items()), flush=True)
    points.sort(key=lambda p: p["step"])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"images": str(args.images.name), "points": points}, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
