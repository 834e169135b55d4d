"""Training a sliced context codec (MLICv2-lite, S2LIC-lite) within CPU means: stage 1 on
cached latents of trained transforms, then end to end.

Stage 1 (after the practice of training entropy models on frozen
transforms, e.g. Minnen & Singh 2020, Sec. 4): the analysis, hyper-analysis and
hyper-synthesis of a shipped mean-scale hyperprior are frozen; the latents of every training
crop (its eight flips and rotations) are computed once, and only the multi-reference entropy
model trains on them. There is no backward pass through the transforms, so a step costs a
small fraction of a full one.

The loss is the rate alone: the Gaussian likelihood of the uniformly noised latent (Ballé
et al. 2018). Latent residual prediction stays silent (its output layer held at zero) in this
stage. It exists to lower the distortion, and the distortion cannot be judged in the latent
domain: the frozen synthesis was trained on quantised latents and maps them to better
pictures than it maps the unquantised ones, so a correction that brings ``y_hat`` closer to
``y`` made the decoded pictures worse (measured: kodim04, quality 1, latent error -10%,
pixel MSE +6%). It trains in the end-to-end stage, where the synthesis is in the loss. The
logged ``mse`` is the first-order latent-domain estimate ``sum_c w_c * mean((y_hat_c -
y_c)^2)`` (:func:`distortion_weights`), for information only.

The end-to-end stage (:func:`train_joint`) then fine-tunes the hyperprior's transforms and
the whole entropy model, residual prediction included, on ``lambda * 255^2 * MSE + bpp``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import CodecError
from ..interfaces import TrainRequest
from ..hyperprior.model import MeanScaleHyperprior, gaussian_likelihood
from ..training.data import Augment, image_files, load_images
from ..training.schedule import atomic_save, warmup_cosine
from .family import ContextFamily
from .slices import SlicedEntropyModel


@dataclass(kw_only=True)
class RunOptions:
    """What both stages' runs take."""

    family: ContextFamily
    data: Path
    run_dir: Path
    steps: int = 100_000
    time_budget: float | None = None  # seconds
    batch: int = 16
    lr: float = 3e-4
    warmup: int = 200
    decay_from: float = 0.8  # fraction of the run after which the learning rate decays
    checkpoint_every: float = 300.0
    seed: int = 0
    threads: int | None = None


@dataclass(kw_only=True)
class Stage1Options(RunOptions):
    hyperprior: Path  # weights file whose transforms stay frozen
    validate_every: int = 500
    config: Any = None  # the family's config; None: its defaults for the hyperprior's M


def _dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x


@torch.no_grad()
def latent_cache(model: MeanScaleHyperprior, data: Path, split: str, variants: int,
                 log: Callable[[str], None] = print) -> dict[str, torch.Tensor]:
    """Ungained latents ``y0`` (float16) and per-quality integer hyper-latents ``z`` (int16)
    of every crop of ``split`` in each of ``variants`` flips/rotations."""
    files = image_files(data, split)
    if not files:
        raise CodecError(f"no images in {data} (split {split})")
    images = load_images(files)
    Q = model.config.qualities
    ys, zs = [], []
    t0 = time.time()
    for n in range(images.shape[0]):
        x = images[n].float()[None] / 255.0
        batch = torch.cat([_dihedral(x, k) for k in range(variants)])
        y0 = model.g_a(batch)
        h = model.h_a(y0)
        z = torch.stack([torch.round(h * torch.exp(model.log_hgain[q])[None, :, None, None]) for q in range(Q)], 1)
        ys.append(y0.half())
        zs.append(z.to(torch.int16))
        if (n + 1) % 100 == 0:
            log(f"cached {n + 1}/{images.shape[0]} crops of {split} ({time.time() - t0:.0f} s)")
    return {"y0": torch.cat(ys), "z": torch.cat(zs)}


@torch.no_grad()
def distortion_weights(model: MeanScaleHyperprior, y0: torch.Tensor, delta: float = 0.05, seed: int = 0) -> torch.Tensor:
    """Per-channel pixel MSE caused by a unit squared error in the synthesis input, measured
    by random +-delta perturbations of one channel at a time around real latents."""
    gen = torch.Generator().manual_seed(seed)
    M = y0.shape[1]
    q = torch.arange(y0.shape[0]) % model.config.qualities
    gain, inv_gain, _, _ = model.gains(q)
    base_in = torch.round(y0.float() * gain) * inv_gain
    base = model.g_s(base_in)
    w = torch.empty(M)
    for c in range(M):
        sign = torch.randint(0, 2, base_in[:, c].shape, generator=gen).float() * 2 - 1
        pert = base_in.clone()
        pert[:, c] += delta * sign
        w[c] = ((model.g_s(pert) - base) ** 2).mean() / delta**2
    return w


class Stage1:
    """The frozen hyperprior pieces and the trainable entropy model, with the loss."""

    def __init__(self, hyperprior: MeanScaleHyperprior, entropy_model: SlicedEntropyModel,
                 weights: torch.Tensor):
        self.hp = hyperprior.eval()
        for p in self.hp.parameters():
            p.requires_grad_(False)
        self.em = entropy_model
        self.weights = weights  # (M,) pixel MSE per unit squared latent error
        self.lambdas = torch.tensor(hyperprior.config.lambdas)

    def inputs(self, y0: torch.Tensor, z: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, ...]:
        gain, inv_gain, _, inv_hgain = self.hp.gains(q)
        with torch.no_grad():
            hyper = self.hp.h_s(z.float() * inv_hgain)
        return y0.float() * gain, hyper, gain, inv_gain

    def loss(self, y0: torch.Tensor, z: torch.Tensor, q: torch.Tensor, noise: bool = True) -> dict[str, torch.Tensor]:
        y, hyper, gain, inv_gain = self.inputs(y0, z, q)
        out = self.em(y, hyper, gain, inv_gain, q)
        pixels = y.shape[2] * y.shape[3] * 256
        y_in = y + torch.empty_like(y).uniform_(-0.5, 0.5) if noise else torch.round(y - out["mu"]) + out["mu"]
        bits = -torch.log2(gaussian_likelihood(y_in, out["mu"], out["sigma"])).sum((1, 2, 3))
        bpp = bits / pixels
        err = ((out["y_hat"] - y) * inv_gain) ** 2
        mse = (err.mean((2, 3)) * self.weights[None]).sum(1)
        return {"loss": bpp.mean(), "bpp": bpp.detach(), "mse": mse.detach()}

    @torch.no_grad()
    def baseline(self, y0: torch.Tensor, z: torch.Tensor, q: torch.Tensor) -> dict[str, torch.Tensor]:
        """The hyperprior alone on the same latents: discrete bits and latent MSE."""
        y, hyper, gain, inv_gain = self.inputs(y0, z, q)
        M = y.shape[1]
        mu = hyper[:, :M] * gain
        sigma = hyper[:, M:].abs().clamp_min(self.hp.config.scale_min) * gain
        y_hat = torch.round(y - mu) + mu
        bits = -torch.log2(gaussian_likelihood(y_hat, mu, sigma)).sum((1, 2, 3))
        mse = ((((y_hat - y) * inv_gain) ** 2).mean((2, 3)) * self.weights[None]).sum(1)
        return {"bpp": bits / (y.shape[2] * y.shape[3] * 256), "mse": mse}


@torch.no_grad()
def silence_residual_prediction(em: SlicedEntropyModel) -> None:
    """Hold latent residual prediction at exactly zero and out of training (stage 1)."""
    for name, p in em.named_parameters():
        if ".residual." in name:
            if ".layers.2." in name:
                p.zero_()
            p.requires_grad_(False)


def _load_or_build_cache(opts: Stage1Options, hp: MeanScaleHyperprior, log: Callable[[str], None]
                         ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    path = opts.run_dir / "latents.pt"
    if path.exists():
        cache = torch.load(path, map_location="cpu", weights_only=True)
        return cache["train"], cache["val"]
    train = latent_cache(hp, opts.data, "train", 8, log)
    val = latent_cache(hp, opts.data, "val", 1, log)
    atomic_save({"train": train, "val": val}, path)
    return train, val


def validate(stage: Stage1, val: dict[str, torch.Tensor], batch: int = 35) -> dict[int, dict[str, float]]:
    """Discrete bits (rounded latents, exact Gaussian bin masses) and estimated PSNR change per
    quality on the validation crops, against the hyperprior alone."""
    Q = stage.hp.config.qualities
    out: dict[int, dict[str, float]] = {}
    n = val["y0"].shape[0]
    with torch.no_grad():
        for qi in range(Q):
            tot = {"bpp": 0.0, "base_bpp": 0.0, "mse": 0.0, "base_mse": 0.0}
            for s in range(0, n, batch):
                y0, z = val["y0"][s:s + batch], val["z"][s:s + batch, qi]
                q = torch.full((y0.shape[0],), qi)
                r = stage.loss(y0, z, q, noise=False)
                b = stage.baseline(y0, z, q)
                tot["bpp"] += float(r["bpp"].sum())
                tot["mse"] += float(r["mse"].sum())
                tot["base_bpp"] += float(b["bpp"].sum())
                tot["base_mse"] += float(b["mse"].sum())
            out[qi + 1] = {k: v / n for k, v in tot.items()}
    return out


def train_stage1(opts: Stage1Options, log: Callable[[str], None] = print) -> Path:
    """Train (or resume) the entropy model on cached latents; returns the checkpoint path."""
    from ..hyperprior.weights import load_model_file

    if opts.threads:
        torch.set_num_threads(opts.threads)
    opts.run_dir.mkdir(parents=True, exist_ok=True)
    hp, _ = load_model_file(opts.hyperprior)
    hp_sha = json.loads(Path(opts.hyperprior).with_suffix(".json").read_text()).get("sha256")
    t_cache = time.time()
    train_set, val_set = _load_or_build_cache(opts, hp, log)
    log(f"latents: {train_set['y0'].shape[0]} training, {val_set['y0'].shape[0]} validation "
        f"({time.time() - t_cache:.0f} s)")
    family = opts.family
    ckpt_path = opts.run_dir / "checkpoint.pt"
    if ckpt_path.exists():
        state = _load_checkpoint(ckpt_path, family)
        cfg = family.config_from_json(state["config"])
        em = family.float_class(cfg)
        em.load_state_dict(state["model"])
        weights = state["distortion_weights"]
        step, wall, history = state["step"], state["wall"], state["history"]
        log(f"resuming {ckpt_path} at step {step}")
    else:
        cfg = opts.config or family.config(hp.config.M, hp.config.qualities, hp.config.scale_min)
        torch.manual_seed(opts.seed)
        em = family.float_class(cfg)
        weights = distortion_weights(hp, train_set["y0"][:48:3])
        step, wall, history, state = 0, 0.0, [], None
    silence_residual_prediction(em)
    stage = Stage1(hp, em, weights)
    opt = torch.optim.Adam([p for p in em.parameters() if p.requires_grad], lr=opts.lr)
    if state is not None:
        try:
            opt.load_state_dict(state["optimizer"])
        except ValueError:  # a checkpoint from before residual prediction was held out of stage 1
            log("optimizer state not resumed (its parameter groups differ)")
    gen = torch.Generator().manual_seed(opts.seed + step)
    n = train_set["y0"].shape[0]
    Q = hp.config.qualities
    params = sum(p.numel() for p in em.parameters())
    log(f"entropy model {cfg.to_json()}: {params} parameters")
    base_step, t0, last = step, time.time(), time.time()

    def save() -> None:
        atomic_save({"family": family.name, "config": cfg.to_json(), "model": em.state_dict(), "optimizer": opt.state_dict(),
                      "distortion_weights": weights, "step": step, "wall": wall + time.time() - t0,
                      "history": history, "hyperprior": str(opts.hyperprior), "hyperprior_sha256": hp_sha,
                      "data": f"{opts.data.name}/ split train: {n // 8} crops x 8 flips/rotations"}, ckpt_path)

    em.train()
    window: list[float] = []
    while True:
        elapsed = time.time() - t0
        progress = (step - base_step) / max(1, opts.steps - base_step)
        if opts.time_budget:
            progress = max(progress, elapsed / opts.time_budget)
        if progress >= 1.0:
            break
        lr = warmup_cosine(opts.lr, opts.warmup, opts.decay_from, step, progress, floor=0.05)
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randint(0, n, (opts.batch,), generator=gen)
        q = torch.randint(0, Q, (opts.batch,), generator=gen)
        y0 = train_set["y0"][idx]
        z = train_set["z"][idx, q]
        out = stage.loss(y0, z, q)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_([p for p in em.parameters() if p.requires_grad], 1.0)
        opt.step()
        step += 1
        window.append(float(out["loss"].detach()))
        if step % 100 == 0:
            rate = (step - base_step) / (time.time() - t0) * 3600
            log(f"step {step} lr {lr:.2e} loss {sum(window) / len(window):.4f} {rate:.0f} steps/h")
            history.append({"step": step, "wall": wall + time.time() - t0, "loss": sum(window) / len(window)})
            window.clear()
        if step % opts.validate_every == 0:
            em.eval()
            v = validate(stage, val_set)
            em.train()
            parts = [f"q{k} {r['bpp']:.4f}/{r['base_bpp']:.4f}bpp ({100 * (r['bpp'] / r['base_bpp'] - 1):+.1f}%)"
                     for k, r in v.items()]
            log("val " + " ".join(parts))
            history.append({"step": step, "val": v})
        if time.time() - last > opts.checkpoint_every:
            save()
            last = time.time()
    save()
    log(f"finished at step {step}")
    return ckpt_path


@dataclass(kw_only=True)
class JointOptions(RunOptions):
    """End-to-end fine-tuning: the hyperprior's transforms and the entropy model together."""

    stage1: Path  # a stage-1 checkpoint: its entropy model and the hyperprior it names
    batch: int = 8
    lr: float = 1e-4
    warmup: int = 100
    augment: Augment = field(default_factory=Augment)


def joint_loss(hp: MeanScaleHyperprior, em: SlicedEntropyModel, x: torch.Tensor, q: torch.Tensor
               ) -> dict[str, torch.Tensor]:
    """``lambda * 255^2 * MSE + bpp`` of the whole codec on crops ``x`` (Ballé et al. 2018's
    Lagrangian; noise for the rates, straight-through rounding for the reconstruction)."""
    gain, inv_gain, hgain, inv_hgain = hp.gains(q)
    y0 = hp.g_a(x)
    y = y0 * gain
    z = hp.h_a(y0) * hgain
    z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5)
    z_hat = z + (torch.round(z) - z).detach()
    out = em(y, hp.h_s(z_hat * inv_hgain), gain, inv_gain, q)
    y_noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
    bits = -(torch.log2(gaussian_likelihood(y_noisy, out["mu"], out["sigma"])).sum((1, 2, 3))
             + torch.log2(hp.z_likelihood(z_noisy)).sum((1, 2, 3)))
    bpp = bits / (x.shape[2] * x.shape[3])
    mse = ((hp.g_s(out["y_hat"] * inv_gain) - x) ** 2).mean((1, 2, 3))
    lam = torch.tensor(hp.config.lambdas, dtype=x.dtype)[q]
    return {"loss": (lam * 255.0**2 * mse + bpp).mean(), "bpp": bpp.detach(), "mse": mse.detach()}


def train_joint(opts: JointOptions, log: Callable[[str], None] = print) -> Path:
    """Fine-tune transforms and entropy model end to end from a stage-1 checkpoint (resumable)."""
    from ..hyperprior.weights import load_model_file
    from ..training.data import augmented_batch

    if opts.threads:
        torch.set_num_threads(opts.threads)
    opts.run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = opts.run_dir / "checkpoint.pt"
    family = opts.family
    s1 = _load_checkpoint(opts.stage1, family)
    hp, _ = load_model_file(Path(s1["hyperprior"]))
    em = family.float_class(family.config_from_json(s1["config"]))
    em.load_state_dict(s1["model"])
    state = _load_checkpoint(ckpt_path, family) if ckpt_path.exists() else None
    if state is not None:
        hp.load_state_dict(state["hyperprior_model"])
        em.load_state_dict(state["model"])
        step, wall, history = state["step"], state["wall"], state["history"]
        log(f"resuming {ckpt_path} at step {step}")
    else:
        step, wall, history = 0, 0.0, []
    params = [p for n, p in hp.named_parameters() if not n.endswith("quantiles")] + list(em.parameters())
    opt = torch.optim.Adam(params, lr=opts.lr)
    if state is not None:
        opt.load_state_dict(state["optimizer"])
    images = load_images(image_files(opts.data, "train"))
    gen = torch.Generator().manual_seed(opts.seed + step)
    Q = hp.config.qualities
    log(f"joint fine-tuning from {opts.stage1} (stage 1 step {s1['step']}): {images.shape[0]} images")
    hp.train()
    em.train()
    base_step, t0, last = step, time.time(), time.time()

    def save() -> None:
        atomic_save({"family": family.name, "config": em.config.to_json(), "model": em.state_dict(),
                     "hyperprior_model": hp.state_dict(),
                      "hyperprior_config": hp.config.to_json(), "optimizer": opt.state_dict(), "step": step,
                      "wall": wall + time.time() - t0, "history": history, "stage1": str(opts.stage1),
                      "stage1_step": int(s1["step"]), "hyperprior": s1["hyperprior"],
                      "data": f"{opts.data.name}/ split train: {images.shape[0]} images, augmented"}, ckpt_path)

    window: list[tuple[float, float, float]] = []
    while True:
        progress = (step - base_step) / max(1, opts.steps - base_step)
        if opts.time_budget:
            progress = max(progress, (time.time() - t0) / opts.time_budget)
        if progress >= 1.0:
            break
        lr = warmup_cosine(opts.lr, opts.warmup, opts.decay_from, step - base_step, progress)
        for g in opt.param_groups:
            g["lr"] = lr
        x = augmented_batch(images, opts.batch, gen, opts.augment)
        q = torch.randint(0, Q, (x.shape[0],), generator=gen)
        out = joint_loss(hp, em, x, q)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        window.append((float(out["loss"].detach()), float(out["bpp"].mean()), float(out["mse"].mean())))
        if step % 100 == 0:
            rate = (step - base_step) / (time.time() - t0) * 3600
            loss = sum(w[0] for w in window) / len(window)
            log(f"step {step} lr {lr:.2e} loss {loss:.4f} {rate:.0f} steps/h")
            history.append({"step": step, "wall": wall + time.time() - t0, "loss": loss})
            window.clear()
        if time.time() - last > opts.checkpoint_every:
            save()
            last = time.time()
    save()
    log(f"finished at step {step}")
    return ckpt_path


def export_joint(family: ContextFamily, ckpt_path: Path, out_path: Path, log: Callable[[str], None] = print
                 ) -> dict:
    """Shippable weights from an end-to-end checkpoint: its fine-tuned hyperprior is exported
    first (tables built from it), then packed with the entropy model."""
    import tempfile

    from ..hyperprior.model import HyperpriorConfig
    from ..hyperprior.weights import export_weights as export_hyperprior
    from .weights import export_weights

    state = _load_checkpoint(ckpt_path, family)
    hp = MeanScaleHyperprior(HyperpriorConfig.from_json(state["hyperprior_config"]))
    hp.load_state_dict(state["hyperprior_model"])
    em = family.float_class(family.config_from_json(state["config"]))
    em.load_state_dict(state["model"])
    base = json.loads(Path(state["hyperprior"]).with_suffix(".json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        hp_path = Path(tmp) / "hyperprior-finetuned.safetensors"
        export_hyperprior(hp, hp_path, {"steps": int(base.get("steps", 0)) + int(state["step"]),
                                        "init_sha256": base.get("sha256")})
        manifest = {"stage": "1+end-to-end", "stage1_steps": int(state["stage1_step"]),
                    "joint_steps": int(state["step"]), "steps": int(state["stage1_step"]) + int(state["step"]),
                    "wall_seconds": round(float(state["wall"]), 1), "data": state.get("data")}
        out = export_weights(family, hp_path, em.eval(), out_path, manifest)
    log(f"wrote {out_path} (sha256 {out['sha256'][:16]})")
    return out


def export_checkpoint(family: ContextFamily, ckpt_path: Path, out_path: Path, log: Callable[[str], None] = print
                      ) -> dict:
    """Shippable weights from a stage-1 checkpoint (the hyperprior it was trained on, plus the
    entropy model), with the training figures in the manifest."""
    from .weights import export_weights

    state = _load_checkpoint(ckpt_path, family)
    em = family.float_class(family.config_from_json(state["config"]))
    em.load_state_dict(state["model"])
    hp_path = Path(state["hyperprior"])
    hp_manifest = json.loads(hp_path.with_suffix(".json").read_text())
    if state.get("hyperprior_sha256") and hp_manifest.get("sha256") != state["hyperprior_sha256"]:
        raise CodecError(f"{hp_path} is not the hyperprior {ckpt_path} was trained on")
    vals = [h["val"] for h in state["history"] if "val" in h]
    manifest = {"stage": 1, "steps": int(state["step"]), "wall_seconds": round(float(state["wall"]), 1),
                "batch": 16, "data": state.get("data"),
                "validation_estimate": vals[-1] if vals else None}
    out = export_weights(family, hp_path, em.eval(), out_path, manifest)
    log(f"wrote {out_path} (sha256 {out['sha256'][:16]}, {manifest['steps']} stage-1 steps)")
    return out


def _load_checkpoint(path: Path, family: ContextFamily) -> dict[str, Any]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("family", family.name) != family.name:
        raise CodecError(f"{path} is a {state['family']} checkpoint, not {family.name}")
    return state


def train_codec(family: ContextFamily, request: TrainRequest, log: Callable[[str], None] = print,
                without: str | None = None, joint_from: str | None = None) -> Path:
    """``lcodec train --codec NAME``: stage 1 on the most trained installed hyperprior's
    latents, or with ``joint_from`` (a stage-1 checkpoint) the end-to-end stage; a run folder
    that holds a checkpoint is resumed. Exports when asked."""
    from ..hyperprior.weights import installed_weights as hyperprior_weights
    from ..weightfiles import most_trained

    if request.from_scratch:
        raise CodecError(f"{family.name} trains its entropy model on a trained hyperprior's latents; "
                         "--from-scratch does not apply")
    if joint_from:
        if without:
            raise CodecError("--without applies to stage 1; the end-to-end stage keeps the stage-1 model's contexts")
        if not Path(joint_from).is_file():
            raise CodecError(f"no stage-1 checkpoint at {joint_from}")
        lr = request.lr / 3  # fine-tuning trained transforms: a third of the given peak rate
        log(f"end-to-end stage: learning rate {lr:.2e} (a third of --lr)")
        joint = JointOptions(family=family, stage1=Path(joint_from), data=Path(request.data),
                             run_dir=Path(request.run_dir), steps=request.steps, time_budget=request.time_budget,
                             lr=lr, threads=request.threads, augment=request.augment or Augment())
        ckpt = train_joint(joint, log=log)
        if request.export is not None:
            export_joint(family, ckpt, Path(request.export), log=log)
            evaluate_export(family, Path(request.export), request.evaluate_on, log)
        return ckpt
    shipped = hyperprior_weights()
    if not shipped:
        raise CodecError(f"no hyperprior weights installed: {family.name} stage 1 starts from them")
    config = None
    if without:
        hp_cfg = most_trained(shipped).manifest["config"]
        config = family.config(hp_cfg["M"], len(hp_cfg["lambdas"]), hp_cfg.get("scale_min", 0.11),
                               [n.strip() for n in without.split(",") if n.strip()])
    opts = Stage1Options(family=family, hyperprior=most_trained(shipped).path, data=Path(request.data),
                         run_dir=Path(request.run_dir), steps=request.steps, time_budget=request.time_budget,
                         lr=request.lr, threads=request.threads, config=config)
    ckpt = train_stage1(opts, log=log)
    if request.export is not None:
        export_checkpoint(family, ckpt, Path(request.export), log=log)
        evaluate_export(family, Path(request.export), request.evaluate_on, log)
    return ckpt


def evaluate_export(family: ContextFamily, weights: Path, folder: Path | None, log: Callable[[str], None]) -> None:
    """Mean bpp (container bytes) and PSNR (decoded pixels) per quality on ``folder``, written
    into the weights' manifest."""
    if folder is None:
        return
    from ..container import CODEC_IDS, Header, read_container, write_container
    from ..evaluation.runner import expand_images
    from ..imageio import read_image
    from ..metrics import psnr
    from ..weightfiles import InstalledWeights
    from .codec import ContextCodec
    from .weights import load_weights_file

    manifest = json.loads(weights.with_suffix(".json").read_text())
    impl = ContextCodec(load_weights_file(family, weights, manifest["sha256"]), InstalledWeights(weights, manifest))
    files = expand_images([str(folder)])
    results = {}
    for q in impl.trained_qualities:
        bpps, psnrs = [], []
        for f in files:
            img = read_image(f)
            sections, _ = impl.encode_rgb(img, q)
            data = write_container(Header(CODEC_IDS[family.name], impl.model_id, impl.weights_hash, img.shape[1],
                                          img.shape[0], 3, q), sections)
            out = impl.decode_rgb(read_container(data).sections, img.shape[1], img.shape[0], q)
            bpps.append(8.0 * len(data) / (img.shape[0] * img.shape[1]))
            psnrs.append(psnr(img, out))
        results[str(q)] = {"bpp": round(float(np.mean(bpps)), 4), "psnr": round(float(np.mean(psnrs)), 3)}
        log(f"quality {q}: {results[str(q)]['bpp']:.4f} bpp, {results[str(q)]['psnr']:.2f} dB on {folder}")
    manifest["evaluation"] = {"folder": folder.name, "qualities": results}
    weights.with_suffix(".json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def main(family: ContextFamily, argv: list[str] | None = None) -> None:
    """``python -m codec.NAME.train``: stage 1, the end-to-end stage or an ablation, with more
    knobs than ``lcodec train`` (batch, learning-rate decay, an explicit hyperprior)."""
    import argparse

    p = argparse.ArgumentParser(description=f"{family.name} training: stage 1 (the entropy model on cached latents "
                                            "of a frozen hyperprior) or the end-to-end stage (--joint)")
    p.add_argument("--hyperprior", type=Path, default=None, help="stage 1: the hyperprior whose transforms stay frozen")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--minutes", type=float, default=None)
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--lr", type=float, default=None, help="learning rate (stage 1: 3e-4; joint: 1e-4)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--decay-from", type=float, default=0.8,
                   help="fraction of the run after which the learning rate decays (1: constant)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--without", default="", help="comma-separated contexts to switch off (ablation): "
                                                  + ",".join(family.ablations))
    p.add_argument("--joint", type=Path, default=None, metavar="STAGE1_CHECKPOINT",
                   help="fine-tune the transforms and the entropy model end to end from this stage-1 checkpoint")
    p.add_argument("--export", type=Path, default=None, help="write shippable weights here when done")
    a = p.parse_args(argv)
    minutes = a.minutes * 60 if a.minutes else None
    if a.joint:
        ckpt = train_joint(JointOptions(family=family, stage1=a.joint, data=a.data, run_dir=a.run_dir,
                                        steps=a.steps, time_budget=minutes, lr=a.lr or 1e-4, threads=a.threads))
        if a.export:
            export_joint(family, ckpt, a.export)
        return
    if a.hyperprior is None:
        p.error("stage 1 needs --hyperprior")
    config = None
    if a.without:
        from ..hyperprior.weights import load_model_file

        hp, _ = load_model_file(a.hyperprior)
        try:
            config = family.config(hp.config.M, hp.config.qualities, hp.config.scale_min, a.without.split(","))
        except CodecError as exc:
            p.error(str(exc))
    ckpt = train_stage1(Stage1Options(family=family, hyperprior=a.hyperprior, data=a.data, run_dir=a.run_dir,
                                      steps=a.steps, time_budget=minutes, lr=a.lr or 3e-4, batch=a.batch,
                                      threads=a.threads, config=config, decay_from=a.decay_from))
    if a.export:
        export_checkpoint(family, ckpt, a.export)
