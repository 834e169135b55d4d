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
* a synthesis: every grid upsampled (bicubic) to the image size, stacked, then 1x1
  convolutions and a 3x3 residual refinement to RGB.

Training minimises ``lambda * 255^2 * MSE + bpp`` (the same scaling as the hyperprior, so
quality levels mean the same lambdas), with additive uniform noise on the latents first and
straight-through rounding at the end.

At coding time the ARM runs in integer arithmetic (:class:`FixedPointArm`), so encoder and
decoder derive identical tables whatever the batch, the thread count or the machine.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LEVELS = 7
#: causal neighbourhood (row, column offsets) the ARM sees; previous rows reach one column to
#: the right, so values on the anti-diagonal ``c + 2r = t`` only depend on earlier ``t``
CONTEXT = ((-2, -1), (-2, 0), (-2, 1), (-1, -2), (-1, -1), (-1, 0), (-1, 1), (0, -2), (0, -1))
WAVE = 2  # wavefront index t = c + WAVE * r
ARM_HIDDEN = 16
SYN_HIDDEN = 24
#: Laplace scales the coder has tables for, and the mean resolution (1 / MEAN_STEPS)
SCALE_MIN, SCALE_MAX, SCALE_LEVELS = 0.05, 60.0, 32
MEAN_STEPS = 8
LOG_SCALE_MIN, LOG_SCALE_MAX = math.log(SCALE_MIN), math.log(SCALE_MAX)


def grid_shapes(height: int, width: int) -> list[tuple[int, int]]:
    return [(-(-height // 2**i), -(-width // 2**i)) for i in range(LEVELS)]


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
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(LEVELS, SYN_HIDDEN, 1)
        self.c2 = nn.Conv2d(SYN_HIDDEN, SYN_HIDDEN, 1)
        self.c3 = nn.Conv2d(SYN_HIDDEN, 3, 1)
        self.refine = nn.Conv2d(3, 3, 3, padding=1, padding_mode="replicate")
        with torch.no_grad():
            self.c3.bias.fill_(0.5)
            self.refine.weight.mul_(0.1)
            self.refine.bias.zero_()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.c3(F.relu(self.c2(F.relu(self.c1(z)))))
        return x + self.refine(x)


def upsample_all(latents: list[torch.Tensor], height: int, width: int) -> torch.Tensor:
    """Every grid (1, 1, h_i, w_i) brought to (1, LEVELS, height, width) by bicubic upsampling."""
    ups = [latents[0][..., :height, :width]]
    for i, y in enumerate(latents[1:], start=1):
        ups.append(F.interpolate(y, scale_factor=2**i, mode="bicubic", align_corners=False)[..., :height, :width])
    return torch.cat(ups, dim=1)


def macs_per_pixel(height: int, width: int) -> dict[str, float]:
    """Multiply-accumulates per decoded pixel, by part."""
    n = height * width
    latents = sum(h * w for h, w in grid_shapes(height, width))
    c = len(CONTEXT)
    arm = latents * (c * ARM_HIDDEN + ARM_HIDDEN * ARM_HIDDEN + ARM_HIDDEN * 2) / n
    upsample = (LEVELS - 1) * 16  # bicubic: 4x4 taps per output value
    synthesis = LEVELS * SYN_HIDDEN + SYN_HIDDEN * SYN_HIDDEN + SYN_HIDDEN * 3 + 3 * 3 * 9
    return {"arm": arm, "upsampling": float(upsample), "synthesis": float(synthesis),
            "total": arm + upsample + synthesis}


class FixedPointArm:
    """The ARM in integer arithmetic: weights ``round(w * 2^FRAC)``, activations in units of
    ``2^-FRAC``, products shifted back with floor division. Exact on every machine.

    Every quantity is an integer of bounded size (inputs clipped to ``±INPUT_LIMIT``, weights
    at most ``WEIGHT_LIMIT``, hidden activations clipped to ``ACTIVATION_LIMIT``), so every
    product and partial sum stays below 2^53. The matrix products therefore run as float64
    BLAS calls and give the same integers in any summation order, on any thread count.

    Outputs, per context row: ``base = floor(mean)`` and the table id
    ``scale_index * MEAN_STEPS + floor(frac(mean) * MEAN_STEPS)``.
    """

    FRAC = 8
    INPUT_LIMIT = 1 << 12
    WEIGHT_LIMIT = 1 << 16
    ACTIVATION_LIMIT = 1 << 24

    def __init__(self, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray,
                 w3: np.ndarray, b3: np.ndarray):
        arrays = [np.asarray(a, dtype=np.int64) for a in (w1, b1, w2, b2, w3, b3)]
        if max(int(np.abs(a).max()) for a in arrays) > self.WEIGHT_LIMIT:
            raise ValueError(f"ARM weights must lie within ±{self.WEIGHT_LIMIT}")
        self._ints = arrays
        self.w1, self.b1, self.w2, self.b2, self.w3, self.b3 = (a.astype(np.float64) for a in arrays)
        self.w1T, self.w2T, self.w3T = (np.ascontiguousarray(w.T) for w in (self.w1, self.w2, self.w3))
        one = 1 << self.FRAC
        step = (LOG_SCALE_MAX - LOG_SCALE_MIN) / (SCALE_LEVELS - 1)
        self.ls_min = int(round(LOG_SCALE_MIN * one))
        self.ls_step = int(round(step * one))

    @classmethod
    def from_float(cls, arm: Arm) -> "FixedPointArm":
        return cls(*cls.quantise(arm))

    @classmethod
    def quantise(cls, arm: Arm) -> list[np.ndarray]:
        one = float(1 << cls.FRAC)
        return [np.clip(np.round(p.detach().double().numpy() * one), -cls.WEIGHT_LIMIT, cls.WEIGHT_LIMIT)
                .astype(np.int64)
                for p in (arm.l1.weight, arm.l1.bias, arm.l2.weight, arm.l2.bias, arm.l3.weight, arm.l3.bias)]

    def arrays(self) -> list[np.ndarray]:
        return list(self._ints)

    def _outputs(self, ctx: np.ndarray) -> np.ndarray:
        """(n, 2) integer-valued float64: mean and log-scale in units of 2^-FRAC."""
        inv = 1.0 / (1 << self.FRAC)  # a power of two: scaling and floor stay exact
        top = float(self.ACTIVATION_LIMIT)
        x = np.minimum(np.maximum(ctx, -self.INPUT_LIMIT), self.INPUT_LIMIT).astype(np.float64)
        h = x @ self.w1T  # inputs are integers: units 2^-f already
        h += self.b1
        np.minimum(np.maximum(h, 0.0, out=h), top, out=h)
        h = h @ self.w2T
        h *= inv
        np.floor(h, out=h)
        h += self.b2
        np.minimum(np.maximum(h, 0.0, out=h), top, out=h)
        out = h @ self.w3T
        out *= inv
        np.floor(out, out=out)
        out += self.b3
        return out

    def __call__(self, ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ctx (n, len(CONTEXT)) integers -> (base int64, table id int64)."""
        out = self._outputs(ctx).astype(np.int64)
        mean8 = out[:, 0] >> (self.FRAC - 3)  # floor(mean * 8)
        base = mean8 >> 3
        frac = mean8 & 7
        s = np.clip((out[:, 1] - self.ls_min + self.ls_step // 2) // self.ls_step, 0, SCALE_LEVELS - 1)
        return base, s * MEAN_STEPS + frac



assert MEAN_STEPS == 8 and FixedPointArm.FRAC >= 3
