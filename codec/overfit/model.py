"""An overfitted image codec: latent grids, an autoregressive entropy model, a tiny synthesis.

After Cool-chic (Ladune et al., "COOL-CHIC: Coordinate-based Low Complexity Hierarchical
Image Codec", ICCV 2023; Leguay et al., "Low-complexity overfitted neural image codec",
MMSP 2023) and C3 (Kim et al., "C3: High-performance and low-complexity neural compression
from a single image or video", CVPR 2024): nothing is pretrained. For each image the encoder
fits

* ``LEVELS`` latent grids, grid ``i`` at 1/2^i of the image size, one channel each;
* an auto-regressive model (ARM): a small MLP that maps the ``CONTEXT`` neighbours of a
  latent value (already decoded, same grid) to the mean and log-scale of a Laplace
  distribution over that value;
* a synthesis: every grid upsampled (bicubic) to the image size, stacked, then a per-pixel
  MLP (1x1 convolutions) and a 3x3 residual refinement to RGB.

Training minimises ``lambda * 255^2 * MSE + bpp`` (the same scaling as the hyperprior, so
quality levels mean the same lambdas), with additive uniform noise on the latents first and
straight-through rounding at the end; the best straight-through iterate is kept.

This module is the torch side (fitting). The decoder's computations, which the encoder also
uses for its reconstruction, are in :mod:`codec.overfit.runtime`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .runtime import (ARM_HIDDEN, CONTEXT, LEVELS, LOG_SCALE_MAX, LOG_SCALE_MIN, SYN_HIDDEN, cubic_taps,
                      grid_shapes)

LR_LATENT, LR_NETWORKS = 0.1, 1e-2  # Adam learning rates at the start of the cosine schedule
NOISE_FRACTION = 0.9  # share of the iterations with additive noise; straight-through rounding after


def context_stack(y: torch.Tensor) -> torch.Tensor:
    """(B, 1, h, w) -> (B, h, w, len(CONTEXT)) neighbour values, zeros outside the grid."""
    h, w = y.shape[-2:]
    p = F.pad(y, (2, 2, 2, 0))
    return torch.stack([p[:, 0, 2 + dr:2 + dr + h, 2 + dc:2 + dc + w] for dr, dc in CONTEXT], dim=-1)


def laplace_bits(y: torch.Tensor, mu: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """-log2 P(y) for integer-binned y under Laplace(mu, exp(log_scale))."""
    b = torch.exp(log_scale.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX))

    def cdf(x: torch.Tensor) -> torch.Tensor:
        z = (x - mu) / b
        return 0.5 - 0.5 * torch.sign(z) * torch.expm1(-z.abs())

    p = (cdf(y + 0.5) - cdf(y - 0.5)).clamp_min(2.0**-16)
    return -torch.log2(p)


class Arm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Linear(len(CONTEXT), ARM_HIDDEN)
        self.l2 = nn.Linear(ARM_HIDDEN, ARM_HIDDEN)
        self.l3 = nn.Linear(ARM_HIDDEN, 2)
        with torch.no_grad():
            self.l3.weight.mul_(0.1)
            self.l3.bias.copy_(torch.tensor([0.0, 0.0]))

    def forward(self, ctx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.l1(ctx))
        h = F.relu(self.l2(h))
        out = self.l3(h)
        return out[..., 0], out[..., 1]


class Synthesis(nn.Module):
    """Per-pixel MLP on the (H, W, LEVELS) upsampled latents, then a 3x3 residual refinement.
    Parameters in the order of :data:`codec.overfit.runtime.SYNTHESIS_SHAPES`."""

    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Linear(LEVELS, SYN_HIDDEN)
        self.l2 = nn.Linear(SYN_HIDDEN, SYN_HIDDEN)
        self.l3 = nn.Linear(SYN_HIDDEN, 3)
        self.refine = nn.Conv2d(3, 3, 3, padding=1, padding_mode="replicate")
        with torch.no_grad():
            self.l3.bias.fill_(0.5)
            self.refine.weight.mul_(0.1)
            self.refine.bias.zero_()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(H, W, LEVELS) -> (1, 3, H, W)."""
        x = self.l3(F.relu(self.l2(F.relu(self.l1(z))))).permute(2, 0, 1)[None]
        return x + self.refine(x)


class Upsampler:
    """Bicubic upsampling of every grid to (H, W) as two dense matrix products per grid
    (fast to differentiate); the same weights as :func:`codec.overfit.runtime.upsample`."""

    def __init__(self, height: int, width: int) -> None:
        self.height, self.width = height, width
        self.mats = []
        for i, (gh, gw) in enumerate(grid_shapes(height, width)[1:], start=1):
            self.mats.append((self._matrix(height, gh, 2**i), self._matrix(width, gw, 2**i).T.contiguous()))

    @staticmethod
    def _matrix(n_out: int, n_in: int, factor: int) -> torch.Tensor:
        index, weights = cubic_taps(n_out, n_in, factor)
        m = np.zeros((n_out, n_in), dtype=np.float64)
        np.add.at(m, (np.repeat(np.arange(n_out), 4), index.ravel()), weights.ravel())
        return torch.from_numpy(m.astype(np.float32))

    def __call__(self, latents: list[torch.Tensor]) -> torch.Tensor:
        """Grids (1, 1, h_i, w_i) -> (H, W, LEVELS)."""
        ups = [latents[0][0, 0, :self.height, :self.width]]
        for y, (mh, mwT) in zip(latents[1:], self.mats):
            ups.append(mh @ y[0, 0] @ mwT)
        return torch.stack(ups, dim=-1)


@dataclass
class FitReport:
    iterations: int
    seconds: float
    bpp_estimate: float
    psnr: float


def fit(image: np.ndarray, lam: float, iterations: int, time_budget: float | None = None, seed: int = 0,
        progress: Callable[[int, int, float, float], None] | None = None
        ) -> tuple[list[torch.Tensor], Arm, Synthesis, FitReport]:
    """Fit latents, ARM and synthesis to one image (HxWx3 uint8). ``progress(i, n, bpp, psnr)``.

    The returned parameters are those of the straight-through iteration with the lowest cost
    (the last one when the fit stops before that phase)."""
    torch.manual_seed(seed)
    h, w = image.shape[:2]
    x = torch.tensor(np.asarray(image), dtype=torch.float32).permute(2, 0, 1)[None] / 255.0
    latents = [torch.zeros(1, 1, gh, gw, requires_grad=True) for gh, gw in grid_shapes(h, w)]
    arm, syn = Arm(), Synthesis()
    up = Upsampler(h, w)
    opt = torch.optim.Adam([{"params": latents, "lr": LR_LATENT},
                            {"params": list(arm.parameters()) + list(syn.parameters()), "lr": LR_NETWORKS}])
    noise_until = int(NOISE_FRACTION * iterations)
    t0 = time.perf_counter()
    bpp = psnr = float("nan")
    best: tuple[float, list[torch.Tensor], dict, dict, float, float] | None = None
    done = 0
    for it in range(iterations):
        if time_budget is not None and time.perf_counter() - t0 > time_budget:
            break
        frac = it / max(1, iterations - 1)
        lr_scale = 0.5 * (1 + math.cos(math.pi * frac)) * 0.95 + 0.05
        opt.param_groups[0]["lr"] = LR_LATENT * lr_scale
        opt.param_groups[1]["lr"] = LR_NETWORKS * lr_scale
        rounded = it >= noise_until
        if rounded:
            q = [y + (torch.round(y) - y).detach() for y in latents]  # straight-through rounding
        else:
            q = [y + torch.empty_like(y).uniform_(-0.5, 0.5) for y in latents]
        bits = sum(laplace_bits(yq[0, 0], *arm(context_stack(yq)[0])).sum() for yq in q)
        x_hat = syn(up(q))
        mse = torch.mean((x_hat - x) ** 2)
        rate = bits / (h * w)
        loss = lam * 255.0**2 * mse + rate
        bpp = float(rate.detach())
        psnr = 10 * math.log10(1.0 / max(float(mse.detach()), 1e-12))
        cost = float(loss.detach())
        if rounded and (best is None or cost < best[0]):  # the cost of the parameters as they are now
            best = (cost, [y.detach().clone() for y in latents],
                    {k: v.clone() for k, v in arm.state_dict().items()},
                    {k: v.clone() for k, v in syn.state_dict().items()}, bpp, psnr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done = it + 1
        if progress and (it % 10 == 0 or it == iterations - 1):
            progress(done, iterations, bpp, psnr)
    if best is not None:
        _, kept, arm_state, syn_state, bpp, psnr = best
        with torch.no_grad():
            for y, k in zip(latents, kept):
                y.copy_(k)
        arm.load_state_dict(arm_state)
        syn.load_state_dict(syn_state)
    return latents, arm, syn, FitReport(done, time.perf_counter() - t0, bpp, psnr)
