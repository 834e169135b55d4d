"""Mean-scale hyperprior with per-quality gain vectors.

The transforms follow Minnen, Ballé & Toderici, "Joint Autoregressive and Hierarchical
Priors for Learned Image Compression" (NeurIPS 2018), without the autoregressive context:
the hyper-synthesis predicts a mean and a scale for every latent element.

Several qualities share one set of transforms through channel-wise gain vectors, as in
Cui et al., "Asymmetric Gained Deep Image Compression With Continuous Rate Adaptation"
(CVPR 2021): quality ``q`` multiplies the latent by ``gain[q]`` before quantisation and the
decoder divides it back with ``inv_gain[q]``; the hyper-latent has its own pair of gains.
Training samples a quality per crop, so every step improves all qualities at once.

This module holds only the differentiable model. Turning its outputs into integer symbols
and table indices happens in :mod:`codec.hyperprior.coding`.

Training builds the network from compressai's layers (GDN and the EntropyBottleneck that
gives the hyper-latent its likelihoods). Coding needs neither compressai's training
machinery nor its package import, which pulls in its datasets and torch-geometric and
costs seconds on every command: with ``coding_only=True`` the GDN layers are
:class:`CodingGDN`, which holds the same parameters and buffers and runs the same float
operations as compressai's GDN in evaluation mode (a test checks the outputs match bit
for bit), and the EntropyBottleneck is left out, since its integer tables are stored in
the weights file.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SCALE_MIN = 0.11
LIKELIHOOD_MIN = 1e-9


@dataclass(frozen=True)
class HyperpriorConfig:
    """Everything needed to build the network; serialised beside the weights."""

    N: int = 64
    M: int = 96
    #: channels of the synthesis transform; ``None`` means ``N``
    N_s: int | None = None
    lambdas: tuple[float, ...] = (0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483)
    scale_min: float = SCALE_MIN
    scale_max: float = 256.0
    scale_levels: int = 64

    @property
    def qualities(self) -> int:
        return len(self.lambdas)

    def to_json(self) -> str:
        raw = asdict(self)
        if raw["N_s"] is None:  # configs from before the synthesis width existed read the same
            del raw["N_s"]
        return json.dumps(raw, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "HyperpriorConfig":
        raw = json.loads(text)
        raw["lambdas"] = tuple(raw["lambdas"])
        return cls(**raw)


def _compressai_layers() -> tuple[type[nn.Module], type[nn.Module]]:
    """compressai's (GDN, EntropyBottleneck), imported on first use (training and export)."""
    with warnings.catch_warnings():
        # compressai's import chain emits deprecation noise from torch.jit that users cannot act on
        warnings.simplefilter("ignore", FutureWarning)
        from compressai.entropy_models import EntropyBottleneck
        from compressai.layers import GDN
    return GDN, EntropyBottleneck


class _Floor(nn.Module):
    bound: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("bound", torch.zeros(1))


class _NonNegative(nn.Module):
    """Buffers of compressai's NonNegativeParametrizer: value = max(p, bound)^2 - pedestal."""

    pedestal: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("pedestal", torch.zeros(1))
        self.lower_bound = _Floor()

    def forward(self, p: Tensor) -> Tensor:
        return torch.max(p, self.lower_bound.bound) ** 2 - self.pedestal


class CodingGDN(nn.Module):
    """Generalised divisive normalisation (Ballé, Laparra & Simoncelli, ICLR 2016) for coding.

    ``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)``, or ``x_i * sqrt(...)`` when
    ``inverse``. Its state dict has the keys of compressai's GDN, and every buffer comes from
    the weights file, so the same float operations give the same bits.
    """

    def __init__(self, channels: int, inverse: bool = False):
        super().__init__()
        self.inverse = inverse
        self.beta = nn.Parameter(torch.ones(channels), requires_grad=False)
        self.gamma = nn.Parameter(torch.eye(channels), requires_grad=False)
        self.beta_reparam = _NonNegative()
        self.gamma_reparam = _NonNegative()

    def forward(self, x: Tensor) -> Tensor:
        C = x.shape[1]
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma).reshape(C, C, 1, 1)
        norm = F.conv2d(x**2, gamma, beta)
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))


def _conv(cin: int, cout: int, k: int = 5, s: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=s, padding=k // 2)


def _deconv(cin: int, cout: int, k: int = 5, s: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=s, padding=k // 2, output_padding=s - 1)


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        return torch.round(x)

    @staticmethod
    def backward(ctx, g: Tensor) -> Tensor:  # type: ignore[override]
        return g


def round_ste(x: Tensor) -> Tensor:
    return _RoundSTE.apply(x)


def gaussian_likelihood(y: Tensor, mu: Tensor, sigma: Tensor) -> Tensor:
    """Probability mass of the unit bin around ``y`` under N(mu, sigma)."""
    v = (y - mu).abs()
    inv = 1.0 / (sigma * math.sqrt(2.0))
    upper = 0.5 * torch.erfc((v - 0.5) * inv)
    lower = 0.5 * torch.erfc((v + 0.5) * inv)
    return (upper - lower).clamp_min(LIKELIHOOD_MIN)


class MeanScaleHyperprior(nn.Module):
    """Analysis/synthesis transforms, hyper transforms and the hyper-latent prior."""

    #: spatial stride of the latent ``y`` and of the hyper-latent ``z``
    y_stride = 16
    z_stride = 64

    def __init__(self, config: HyperpriorConfig = HyperpriorConfig(), coding_only: bool = False):
        super().__init__()
        self.config = config
        self.coding_only = coding_only
        N, M = config.N, config.M
        Ns = config.N_s or N
        if coding_only:
            GDN: type[nn.Module] = CodingGDN
        else:
            GDN, EntropyBottleneck = _compressai_layers()
        self.g_a = nn.Sequential(
            _conv(3, N), GDN(N), _conv(N, N), GDN(N), _conv(N, N), GDN(N), _conv(N, M)
        )
        self.g_s = nn.Sequential(
            _deconv(M, Ns), GDN(Ns, inverse=True), _deconv(Ns, Ns), GDN(Ns, inverse=True),
            _deconv(Ns, Ns), GDN(Ns, inverse=True), _deconv(Ns, 3),
        )
        self.h_a = nn.Sequential(
            _conv(M, N, 3, 1), nn.LeakyReLU(inplace=True),
            _conv(N, N), nn.LeakyReLU(inplace=True), _conv(N, N),
        )
        self.h_s = nn.Sequential(
            _deconv(N, M), nn.LeakyReLU(inplace=True),
            _deconv(M, M * 3 // 2), nn.LeakyReLU(inplace=True),
            _conv(M * 3 // 2, M * 2, 3, 1),
        )
        if not coding_only:
            self.entropy_bottleneck = EntropyBottleneck(N)
        # log-gains start spread by sqrt(lambda): a finer step for a larger lambda
        lam = torch.tensor(config.lambdas, dtype=torch.float32)
        spread = 0.5 * torch.log(lam / lam[len(lam) // 2])
        self.log_gain = nn.Parameter(spread[:, None].repeat(1, M))
        self.log_inv_gain = nn.Parameter(-spread[:, None].repeat(1, M))
        self.log_hgain = nn.Parameter(0.5 * spread[:, None].repeat(1, N))
        self.log_inv_hgain = nn.Parameter(-0.5 * spread[:, None].repeat(1, N))

    # -- pieces shared by training and coding -------------------------------------------
    def gains(self, q: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Per-sample gains for quality indices ``q`` (shape B), each shaped (B, C, 1, 1)."""
        def pick(p: Tensor) -> Tensor:
            return torch.exp(p[q])[:, :, None, None]

        return pick(self.log_gain), pick(self.log_inv_gain), pick(self.log_hgain), pick(self.log_inv_hgain)

    def entropy_parameters(self, z_hat: Tensor, inv_hgain: Tensor, gain: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and scale of the gained latent, from the (gained) decoded hyper-latent."""
        mu, sigma = self.h_s(z_hat * inv_hgain).chunk(2, dim=1)
        sigma = sigma.abs().clamp_min(self.config.scale_min)
        return mu * gain, sigma * gain

    def _prior(self) -> Any:
        if self.coding_only:
            raise RuntimeError("a coding-only model has no hyper-latent prior; load it with coding_only=False")
        return self.entropy_bottleneck

    def z_likelihood(self, z: Tensor) -> Tensor:
        C = z.shape[1]
        flat = z.permute(1, 0, 2, 3).reshape(C, 1, -1)
        lik, _, _ = self._prior()._likelihood(flat)
        lik = lik.clamp_min(LIKELIHOOD_MIN)
        return lik.reshape(C, z.shape[0], z.shape[2], z.shape[3]).permute(1, 0, 2, 3)

    def z_cumulative_logits(self, values: Tensor) -> Tensor:
        """Logits of the learned hyper-latent CDF at ``values`` (shape C x K)."""
        C, K = values.shape
        return self._prior()._logits_cumulative(values.reshape(C, 1, K), stop_gradient=True).reshape(C, K)

    # -- training -------------------------------------------------------------------------
    def forward(self, x: Tensor, q: Tensor) -> dict[str, Tensor]:
        """Training pass: additive noise for the rates, rounding (straight-through) for
        the reconstruction (Minnen & Singh 2020, "Channel-wise autoregressive entropy
        models", Sec. 3)."""
        gain, inv_gain, hgain, inv_hgain = self.gains(q)
        y0 = self.g_a(x)
        y = y0 * gain
        z = self.h_a(y0) * hgain
        z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5)
        z_hat = round_ste(z)
        mu, sigma = self.entropy_parameters(z_hat, inv_hgain, gain)
        y_noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        y_hat = round_ste(y - mu) + mu
        x_hat = self.g_s(y_hat * inv_gain)
        return {
            "x_hat": x_hat,
            "y_likelihood": gaussian_likelihood(y_noisy, mu, sigma),
            "z_likelihood": self.z_likelihood(z_noisy),
        }
