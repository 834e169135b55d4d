"""Stage-1 ablations of the sliced context codecs: the full entropy model and contexts
switched off (MLICv2: each context in turn; S2LIC: the global-inter context, then also the
channel-wise attention).

Every run trains the same number of steps on the same cached latents (the training split of
``../shared/data/train`` in 8 flips/rotations), with the same seed, batch and constant learning
rate, and is scored on the validation split's latents: the discrete rate of the rounded
latent under each model's Gaussians, against the hyperprior alone on the same latents.

    python benchmarks/context_ablation.py --codec mlicv2 --runs runs/ablate --latents runs/mlicv2-s1/latents.pt
    python benchmarks/context_ablation.py --codec s2lic --runs runs/ablate-s2lic --latents runs/mlicv2-s1/latents.pt
    python benchmarks/context_ablation.py --codec s2lic --runs runs/ablate-s2lic --table-only

``--full-from CKPT`` takes the full model's row from a longer stage-1 run's validation at
exactly ``--steps`` steps instead of training it again: the same seed, batch order and noise,
and the same learning rate as long as that run had not begun to decay by then.

Results: ``benchmarks/results/CODEC/ablation.json`` (and a markdown table on stdout).
Latent residual prediction is not in the table: it trains only end to end (see
``codec/context/training.py``), where the synthesis is in the loss.
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

#: per codec, the runs: name -> contexts switched off
RUNS = {
    "mlicv2": {"full": "", **{n: n for n in ("channel", "reweight", "local", "global_context", "hyper_guided")}},
    "s2lic": {"full": "", "global_inter": "global_inter",
              "global_inter+channel_attention": "global_inter,channel_attention"},
}


def run(codec: str, name: str, runs: Path, latents: Path, steps: int, threads: int) -> None:
    d = runs / f"ablate-{name}"
    d.mkdir(parents=True, exist_ok=True)
    if not (d / "latents.pt").exists():
        os.symlink(latents.resolve(), d / "latents.pt")
    cmd = [sys.executable, "-m", f"codec.{codec}.train", "--hyperprior",
           str(ROOT / "codec/hyperprior/weights/hyperprior-lite.safetensors"), "--data",
           str(ROOT.parent / "shared/data/train"), "--run-dir", str(d), "--steps", str(steps),
           "--decay-from", "1.0", "--threads", str(threads)]
    if RUNS[codec][name]:
        cmd += ["--without", RUNS[codec][name]]
    with open(runs / f"ablate-{name}.log", "w") as log:
        subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})


def table(codec: str, runs: Path, steps: int, full_from: Path | None) -> dict:
    rows = {}
    for name in RUNS[codec]:
        ckpt = full_from if name == "full" and full_from else runs / f"ablate-{name}" / "checkpoint.pt"
        if not ckpt.exists():
            continue
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        vals = [h for h in state["history"] if "val" in h and (h["step"] == steps or ckpt != full_from)]
        if not vals:
            continue
        last = vals[-1]
        per_q = {str(q): {"bpp": round(r["bpp"], 5), "hyperprior_bpp": round(r["base_bpp"], 5),
                          "change_percent": round(100 * (r["bpp"] / r["base_bpp"] - 1), 2)}
                 for q, r in last["val"].items()}
        mean = sum(v["change_percent"] for v in per_q.values()) / len(per_q)
        wall = next((h["wall"] for h in state["history"] if h.get("step") == last["step"] and "wall" in h),
                    state["wall"])
        rows[name] = {"steps": last["step"], "wall_seconds": round(wall, 1), "from": f"{ckpt.parent.name}/{ckpt.name}",  # the run folder, not this machine's path
                      "mean_change_percent": round(mean, 2), "qualities": per_q}
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--codec", choices=sorted(RUNS), default="mlicv2")
    ap.add_argument("--runs", type=Path, required=True, help="folder for the run folders and logs")
    ap.add_argument("--full-from", type=Path, help="a longer stage-1 checkpoint to take the full model's row from")
    ap.add_argument("--latents", type=Path, help="a stage-1 latents.pt to share (else each run builds its own)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    if not args.table_only:
        for name in RUNS[args.codec]:
            if name == "full" and args.full_from:
                continue
            if not (args.runs / f"ablate-{name}" / "checkpoint.pt").exists():
                run(args.codec, name, args.runs, args.latents, args.steps, args.threads)
    rows = table(args.codec, args.runs, args.steps, args.full_from)
    out = ROOT / "benchmarks" / "results" / args.codec / "ablation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"protocol": f"{args.steps} steps, batch 16, lr 3e-4 constant after 200 warm-up "
                                           "steps, seed 0; validation split latents, discrete rate of y",
                               "rows": rows}, indent=2) + "\n")
    qs = sorted({q for r in rows.values() for q in r["qualities"]}, key=int)
    print("| contexts | steps | " + " | ".join(f"q{q}" for q in qs) + " | mean |")
    print("| --- | --- | " + " | ".join("---" for _ in qs) + " | --- |")
    for name, r in rows.items():
        label = "all" if name == "full" else f"without {name.replace('+', ' and ')}"
        print(f"| {label} | {r['steps']} | " + " | ".join(f"{r['qualities'][q]['change_percent']:+.2f}%" for q in qs)
              + f" | {r['mean_change_percent']:+.2f}% |")


if __name__ == "__main__":
    main()
