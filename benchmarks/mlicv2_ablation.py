"""MLICv2 stage-1 ablation: the full entropy model and each context switched off in turn.

Every run trains the same number of steps on the same cached latents (the training split of
``../shared/data/train`` in 8 flips/rotations), with the same seed, batch and constant learning
rate, and is scored on the validation split's latents: the discrete rate of the rounded
latent under each model's Gaussians, against the hyperprior alone on the same latents.

    python benchmarks/mlicv2_ablation.py --runs runs/ablate --latents runs/mlicv2-s1/latents.pt
    python benchmarks/mlicv2_ablation.py --runs runs/ablate --table-only   # tabulate finished runs

Results: ``benchmarks/results/mlicv2/ablation.json`` (and a markdown table on stdout).
Latent residual prediction is not in the table: it trains only end to end (see
``codec/mlicv2/train.py``), where the synthesis is in the loss.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUNS = ("full", "channel", "reweight", "local", "global_context", "hyper_guided")


def run(name: str, runs: Path, latents: Path, steps: int, threads: int) -> None:
    d = runs / f"ablate-{name}"
    d.mkdir(parents=True, exist_ok=True)
    if not (d / "latents.pt").exists():
        os.symlink(latents.resolve(), d / "latents.pt")
    cmd = [sys.executable, "-m", "codec.mlicv2.train", "--hyperprior",
           str(ROOT / "codec/hyperprior/weights/hyperprior-lite.safetensors"), "--data",
           str(ROOT.parent / "shared/data/train"), "--run-dir", str(d), "--steps", str(steps),
           "--decay-from", "1.0", "--threads", str(threads)]
    if name != "full":
        cmd += ["--without", name]
    with open(runs / f"ablate-{name}.log", "w") as log:
        subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})


def table(runs: Path) -> dict:
    rows = {}
    for name in RUNS:
        ckpt = runs / f"ablate-{name}" / "checkpoint.pt"
        if not ckpt.exists():
            continue
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        vals = [h for h in state["history"] if "val" in h]
        if not vals:
            continue
        last = vals[-1]
        per_q = {str(q): {"bpp": round(r["bpp"], 5), "hyperprior_bpp": round(r["base_bpp"], 5),
                          "change_percent": round(100 * (r["bpp"] / r["base_bpp"] - 1), 2)}
                 for q, r in last["val"].items()}
        mean = sum(v["change_percent"] for v in per_q.values()) / len(per_q)
        rows[name] = {"steps": last["step"], "wall_seconds": round(state["wall"], 1),
                      "mean_change_percent": round(mean, 2), "qualities": per_q}
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, required=True, help="folder for the run folders and logs")
    ap.add_argument("--latents", type=Path, help="a stage-1 latents.pt to share (else each run builds its own)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    if not args.table_only:
        for name in RUNS:
            if not (args.runs / f"ablate-{name}" / "checkpoint.pt").exists():
                run(name, args.runs, args.latents, args.steps, args.threads)
    rows = table(args.runs)
    out = ROOT / "benchmarks" / "results" / "mlicv2" / "ablation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"protocol": f"{args.steps} steps, batch 16, lr 3e-4 constant after 200 warm-up "
                                           "steps, seed 0; validation split latents, discrete rate of y",
                               "rows": rows}, indent=2) + "\n")
    qs = sorted({q for r in rows.values() for q in r["qualities"]}, key=int)
    print("| contexts | steps | " + " | ".join(f"q{q}" for q in qs) + " | mean |")
    print("| --- | --- | " + " | ".join("---" for _ in qs) + " | --- |")
    for name, r in rows.items():
        label = "all" if name == "full" else f"without {name}"
        print(f"| {label} | {r['steps']} | " + " | ".join(f"{r['qualities'][q]['change_percent']:+.2f}%" for q in qs)
              + f" | {r['mean_change_percent']:+.2f}% |")


if __name__ == "__main__":
    main()
