"""Training loop for the hyperprior: random crops, one lambda per crop, resumable.

Every crop draws a quality level; its loss is ``lambda_q * 255^2 * MSE + bpp`` (the
rate-distortion Lagrangian of Ballé et al. 2017, in CompressAI's scaling). Checkpoints hold
model, optimiser, step and wall time, so a run stopped at any point continues where it was.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import CodecError
from ..training.data import Augment, augmented_batch, image_files, load_images
from ..training.schedule import atomic_save, warmup_cosine

from ..interfaces import TrainRequest
from .model import HyperpriorConfig, MeanScaleHyperprior


@dataclass
class TrainOptions:
    data: Path
    run_dir: Path
    steps: int = 10_000
    time_budget: float | None = None  # seconds; the run ends at whichever comes first
    batch: int = 8
    lr: float = 6e-4
    warmup: int = 300
    decay_from: float = 0.75  # fraction of the run after which the learning rate decays 10x
    checkpoint_every: float = 300.0  # seconds
    snapshot_every: int = 0  # steps; 0 keeps no snapshots
    init: Path | None = None  # weights to start from when there is no checkpoint
    synthesis_width: int | None = None  # widen the synthesis of ``init`` to this many channels
    seed: int = 0
    threads: int | None = None
    compile: bool = False  # run the loss through torch.compile (needs a C++ compiler)
    #: extend the qualities of ``init`` to these lambdas (its own first, then higher ones)
    lambdas: tuple[float, ...] | None = None
    augment: Augment = field(default_factory=Augment)
    split: str = "train"  # which part of ``data`` to train on (the validation split stays out)


def _prior_training(init_from: str | None) -> dict:
    """Steps and wall time already in the weights a run started from (from their manifest)."""
    if not init_from:
        return {"steps": 0, "wall_seconds": 0.0}
    try:
        m = json.loads(Path(init_from).with_suffix(".json").read_text())
        return {"steps": int(m.get("steps", 0)), "wall_seconds": float(m.get("wall_seconds", 0.0)),
                "sha256": m.get("sha256")}
    except (OSError, ValueError):
        return {"steps": 0, "wall_seconds": 0.0}


def rd_loss(model: MeanScaleHyperprior, x: torch.Tensor, q: torch.Tensor) -> dict[str, torch.Tensor]:
    out = model(x, q)
    pixels = x.shape[2] * x.shape[3]
    bits = -(out["y_likelihood"].log2().sum((1, 2, 3)) + out["z_likelihood"].log2().sum((1, 2, 3)))
    bpp = bits / pixels
    mse = ((out["x_hat"] - x) ** 2).mean((1, 2, 3))
    lam = torch.tensor(model.config.lambdas, dtype=x.dtype)[q]
    loss = (lam * 255.0**2 * mse + bpp).mean()
    return {"loss": loss, "bpp": bpp.detach(), "mse": mse.detach()}


@torch.no_grad()
def extend_qualities(model: MeanScaleHyperprior, lambdas: tuple[float, ...]) -> MeanScaleHyperprior:
    """The same model with qualities for ``lambdas``, which must begin with its own.

    Existing qualities keep their gains exactly; each new one starts from the highest
    existing quality's gains, moved by half the log-ratio of the lambdas (the spread the
    model's initial gains follow: quantisation step ~ 1/sqrt(lambda)), so it starts as a
    finer-step version of the old top quality and training takes it from there.
    """
    old = model.config.lambdas
    if tuple(lambdas[:len(old)]) != tuple(old):
        raise CodecError(f"new lambdas must begin with the model's own {list(old)}")
    if len(lambdas) == len(old):
        return model
    config = dataclasses.replace(model.config, lambdas=tuple(lambdas))
    wide = MeanScaleHyperprior(config)
    state = model.state_dict()
    top = len(old) - 1
    for name, sign in (("log_gain", 1.0), ("log_inv_gain", -1.0), ("log_hgain", 0.5), ("log_inv_hgain", -0.5)):
        rows = [state[name][i] for i in range(len(old))]
        for lam in lambdas[len(old):]:
            rows.append(state[name][top] + sign * 0.5 * math.log(lam / old[top]))
        state[name] = torch.stack(rows)
    wide.load_state_dict(state)
    return wide


@torch.no_grad()
def widen_synthesis(model: MeanScaleHyperprior, width: int, seed: int = 0) -> MeanScaleHyperprior:
    """The same model with ``width`` synthesis channels, computing exactly what it did.

    A function-preserving widening in the manner of Chen, Goodfellow & Shlens, "Net2Net:
    Accelerating Learning via Knowledge Transfer" (ICLR 2016), with zeros for the new
    outgoing weights: the new channels receive randomly initialised inputs, send nothing
    onwards yet, and are normalised by GDN on their own (no cross terms), so training
    starts from the narrow model's rate-distortion point and grows into the new capacity.
    """
    old_width = model.config.N_s or model.config.N
    if width == old_width:
        return model
    if width < old_width:
        raise CodecError(f"cannot narrow the synthesis from {old_width} to {width} channels")
    config = dataclasses.replace(model.config, N_s=width)
    with torch.random.fork_rng(devices=[]):  # the caller's random stream is left alone
        torch.manual_seed(seed)
        wide = MeanScaleHyperprior(config)
    state = wide.state_dict()
    n = old_width
    for key, old in model.state_dict().items():
        new = state[key]
        if not key.startswith("g_s.") or new.shape == old.shape:
            state[key] = old.clone()
            continue
        layer, name = key.split(".")[1], key.rsplit(".", 1)[1]
        if name == "weight" and layer == "0":  # (M, width, k, k): new outputs keep their init
            new[:, :n] = old
        elif name == "weight":  # (width, out, k, k): nothing leaves the new channels yet
            new[:n, :old.shape[1]] = old
            new[n:] = 0.0
        elif name == "bias":
            new[:n] = old
            new[n:] = 0.0
        elif name == "gamma":  # GDN: the old block kept, cross terms at their initial zero
            new[:n, :n] = old
        elif name == "beta":
            new[:n] = old
        else:
            raise ValueError(f"cannot widen {key}")
    wide.load_state_dict(state)
    return wide


def learning_rate(opts: TrainOptions, step: int, progress: float) -> float:
    return warmup_cosine(opts.lr, opts.warmup, opts.decay_from, step, progress)


def _compiled(fn: Callable) -> Callable:
    """``fn`` through torch.compile; its C++ kernels need a compiler on the PATH."""
    import shutil

    if not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        raise CodecError("compiled training needs a C++ compiler (g++ or clang++) on the PATH")
    return torch.compile(fn, dynamic=False)  # one static graph per crop size


def train(opts: TrainOptions, config: HyperpriorConfig | None = None,
          log: Callable[[str], None] = print) -> Path:
    """Train (or resume) and return the path of the final checkpoint."""
    if opts.threads:
        torch.set_num_threads(opts.threads)
    opts.run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = opts.run_dir / "checkpoint.pt"
    if opts.synthesis_width and (ckpt_path.exists() or opts.init is None):
        raise CodecError("a synthesis width widens the weights a run starts from; it does not apply "
                         + (f"when resuming {ckpt_path}" if ckpt_path.exists() else "without starting weights"))
    gen = torch.Generator().manual_seed(opts.seed)
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        config = HyperpriorConfig.from_json(state["config"])
        model = MeanScaleHyperprior(config)
        model.load_state_dict(state["model"])
        step, wall = state["step"], state["wall"]
        history = state.get("history", [])
        init_from = state.get("init_from")
        prior = state.get("prior") or _prior_training(init_from)
        gen.manual_seed(opts.seed + step)
        log(f"resuming {ckpt_path} at step {step}")
    else:
        if opts.init is not None:
            from .weights import load_model_file

            model, _ = load_model_file(opts.init)
            log(f"starting from {opts.init}")
            narrow = model.config.N_s or model.config.N
            narrow_q = model.config.qualities
            if opts.synthesis_width:
                model = widen_synthesis(model, opts.synthesis_width)
                log(f"synthesis widened to {opts.synthesis_width} channels")
            if opts.lambdas:
                model = extend_qualities(model, opts.lambdas)
                log(f"qualities extended to lambdas {list(opts.lambdas)}")
            config = model.config
        else:
            config = config or HyperpriorConfig()
            model = MeanScaleHyperprior(config)
        step, wall, history = 0, 0.0, []
        init_from = str(opts.init) if opts.init else None
        prior = _prior_training(init_from)
        if opts.lambdas and opts.init is not None:
            prior["qualities_extended_from"] = narrow_q
        if opts.init is not None and opts.synthesis_width and opts.synthesis_width != narrow:
            prior["synthesis_widened_from"] = narrow
        state = None
    params = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    opt = torch.optim.Adam(params, lr=opts.lr)
    loss_fn = _compiled(rd_loss) if opts.compile else rd_loss
    if state is not None:
        opt.load_state_dict(state["optimizer"])
    base_step, base_wall = step, wall
    files = image_files(opts.data, opts.split)
    if not files:
        raise CodecError(f"no training images in {opts.data} (split {opts.split})")
    images = load_images(files)
    data_note = f"{opts.data.name}/ split {opts.split}: {images.shape[0]} images"
    log(f"{data_note}, augmentation {opts.augment}, config {config.to_json()}")
    model.train()
    t0 = time.time()
    last_ckpt = t0
    window: list[tuple[float, float, int]] = []

    def save() -> None:
        atomic_save({
            "config": config.to_json(), "model": model.state_dict(), "optimizer": opt.state_dict(),
            "step": step, "wall": base_wall + time.time() - t0, "history": history,
            "data": data_note, "augment": dataclasses.asdict(opts.augment), "init_from": init_from, "prior": prior,
        }, ckpt_path)

    while True:
        elapsed = time.time() - t0
        progress = (step - base_step) / max(1, opts.steps - base_step) if opts.steps > base_step else 1.0
        if opts.time_budget:
            progress = max(progress, elapsed / opts.time_budget)
        if progress >= 1.0:
            break
        lr = learning_rate(opts, step - base_step, progress)
        for g in opt.param_groups:
            g["lr"] = lr
        x = augmented_batch(images, opts.batch, gen, opts.augment)
        q = torch.randint(0, config.qualities, (x.shape[0],), generator=gen)
        out = loss_fn(model, x, q)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        for b in range(x.shape[0]):
            window.append((float(out["bpp"][b]), float(out["mse"][b]), int(q[b])))
        if step % 100 == 0:
            rate = (step - base_step) / (time.time() - t0) * 3600
            per_q = []
            for qi in range(config.qualities):
                rows = [(b, m) for b, m, qq in window if qq == qi]
                if rows:
                    bpp = sum(r[0] for r in rows) / len(rows)
                    mse = sum(r[1] for r in rows) / len(rows)
                    per_q.append(f"q{qi + 1} {bpp:.3f}bpp/{10 * math.log10(1 / max(mse, 1e-10)):.2f}dB")
            loss = float(out["loss"].detach())
            log(f"step {step} lr {lr:.2e} loss {loss:.4f} {rate:.0f} steps/h | " + " ".join(per_q))
            history.append({"step": step, "wall": base_wall + time.time() - t0, "loss": loss})
            window.clear()
        if opts.snapshot_every and step % opts.snapshot_every == 0:
            torch.save({"config": config.to_json(), "model": model.state_dict(), "step": step,
                        "wall": base_wall + time.time() - t0}, opts.run_dir / f"snapshot_{step:07d}.pt")
        if time.time() - last_ckpt > opts.checkpoint_every:
            save()
            last_ckpt = time.time()
    save()
    log(f"finished at step {step}")
    return ckpt_path


def export_checkpoint(ckpt_path: Path, out_path: Path, kodak: Path | None = None,
                      log: Callable[[str], None] = print) -> dict:
    """Export a checkpoint to shippable weights, with Kodak figures in the manifest.

    The Kodak figures come from real coding: container bytes on disk and decoded pixels.
    """
    from .weights import export_weights

    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    config = HyperpriorConfig.from_json(state["config"])
    model = MeanScaleHyperprior(config)
    model.load_state_dict(state["model"])
    prior = state.get("prior") or _prior_training(state.get("init_from"))
    manifest = {
        # totals over every run that led to these weights; this run's own share beside them
        "steps": prior["steps"] + int(state["step"]),
        "wall_seconds": round(prior["wall_seconds"] + float(state["wall"]), 1),
        "steps_this_run": int(state["step"]),
        "lambdas": list(config.lambdas), "data": state.get("data", "train/"),
        "augment": state.get("augment"),
        "init_from": Path(state["init_from"]).name if state.get("init_from") else None, "batch": 8,
        "qualities": {str(i + 1): {"lambda": lam} for i, lam in enumerate(config.lambdas)},
    }
    if prior.get("sha256"):
        manifest["init_sha256"] = prior["sha256"]
    if prior.get("qualities_extended_from"):
        manifest["qualities_extended_from"] = prior["qualities_extended_from"]
    if prior.get("synthesis_widened_from"):
        manifest["synthesis_widened_from"] = prior["synthesis_widened_from"]
    manifest = export_weights(model, out_path, manifest)
    if kodak is not None:
        from .evaluate import evaluate_weights

        results = evaluate_weights(out_path, kodak, log=log)
        for q, row in results.items():
            manifest["qualities"][str(q)].update({"kodak_bpp": row["bpp"], "kodak_psnr": row["psnr"]})
        out_path.with_suffix(".json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def train_codec(request: TrainRequest, log: Callable[[str], None] = print, synthesis_width: int | None = None,
                lambdas: str | None = None) -> Path:
    """``lcodec train`` for the hyperprior: resume, or start from the most trained shipped
    weights (widened and with added qualities when asked), then export and evaluate."""
    from ..weightfiles import most_trained
    from .weights import installed_weights

    resuming = (Path(request.run_dir) / "checkpoint.pt").exists()
    if synthesis_width and (request.from_scratch or resuming):
        raise CodecError("a synthesis width widens the weights a run starts from; it does not apply "
                         + ("from scratch" if request.from_scratch else f"when resuming {request.run_dir}"))
    try:
        new_lambdas = tuple(float(v) for v in lambdas.split(",")) if lambdas else None
    except ValueError:
        raise CodecError(f"lambdas must be comma-separated numbers, not {lambdas!r}") from None
    if new_lambdas and (request.from_scratch or resuming):
        raise CodecError("lambdas extend the weights a run starts from; they do not apply "
                         + ("from scratch" if request.from_scratch else f"when resuming {request.run_dir}"))
    augment = request.augment or Augment()
    if any(c < 64 or c % 64 for c in augment.crops):
        raise CodecError("hyperprior crop sizes must be multiples of 64 (the hyper-latent's stride)")
    init = None
    if not request.from_scratch and not resuming:
        shipped = installed_weights()
        init = most_trained(shipped).path if shipped else None
    opts = TrainOptions(data=Path(request.data), run_dir=Path(request.run_dir), steps=request.steps,
                        time_budget=request.time_budget, lr=request.lr, init=init, threads=request.threads,
                        synthesis_width=synthesis_width, compile=request.compile, lambdas=new_lambdas,
                        augment=augment)
    ckpt = train(opts, log=log)
    if request.export is not None:
        manifest = export_checkpoint(ckpt, Path(request.export), request.evaluate_on, log=log)
        log(f"wrote {request.export} (sha256 {manifest['sha256'][:16]}, {manifest['steps']} steps)")
    return ckpt
