"""Encode-time latent refinement for amortized codecs: stochastic Gumbel annealing.

An amortized encoder (an analysis transform) gives a latent that is good on average, not the
best one for this image. Refinement optimises the latent of the one image being coded for
rate + lambda * distortion against the fixed decoder, as in Yang, Bamler & Mandt, "Improving
Inference for Neural Image Compression" (NeurIPS 2020): each element may round down or up;
stochastic Gumbel annealing (SGA) draws that choice from a relaxed (Gumbel-softmax)
two-way distribution whose logits favour the nearer integer, with a temperature annealed
towards zero, so the optimisation sees the discreteness it will meet instead of additive
noise. The stream format and the decoder do not change: only which integers are coded.

A codec that supports refinement describes one image's problem as a :class:`RefineProblem`
(the initial latent, the fixed means and coding scales its entropy model gives, its synthesis
and lambda); :func:`refine` returns the refined latent. Here the hyper-latent stays as the
analysis gave it, so means and scales are fixed and the rate term is exactly what the
entropy coder will spend (scales are the coder's table values). A context model, whose means
and scales depend on the latents decoded before, gives instead a ``context`` function that
quantises the latent with the relaxed rounding it is handed, slice by slice, and returns the
bits and the decoded latent; the rate then follows the contexts as they change.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .errors import CodecError
from .interfaces import Progress

#: named settings: iterations of Adam on the latent
PRESETS = {"fast": 100, "slow": 600}
MAX_ITERATIONS = 20_000


def parse_refine(value: str | int | None) -> int:
    """Iterations for ``--refine``: ``fast``, ``slow``, ``none`` or a count (0 .. 20000)."""
    if value is None or value == "none":
        return 0
    if isinstance(value, str) and value in PRESETS:
        return PRESETS[value]
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise CodecError(f"refine must be fast, slow, none or a number of iterations, not {value!r}") from None
    if not 0 <= n <= MAX_ITERATIONS:
        raise CodecError(f"refine iterations must lie in 0..{MAX_ITERATIONS}, not {n}")
    return n


@dataclass
class RefineProblem:
    """One image's refinement problem, in the codec's own latent space."""

    latent: Tensor  # the analysis' continuous latent (1, C, H, W), in coding units
    mean: Tensor  # fixed means of the latent, same shape
    scale: Tensor  # fixed scales the coder will use (its table values), same shape
    synthesize: Callable[[Tensor], Tensor]  # latent -> reconstruction in [0, 1], cropped to the image
    target: Tensor  # the image (1, 3, h, w) in [0, 1]
    lam: float  # distortion weight: loss = bits / pixels + lam * 255^2 * MSE
    #: for context models: (latent, quantize residual) -> (bits, decoded latent); replaces the
    #: fixed ``mean`` and ``scale`` (which then serve only as the starting point's statistics)
    context: Callable[[Tensor, Callable[[Tensor], Tensor]], tuple[Tensor, Tensor]] | None = None


def gaussian_bits(values: Tensor, mean: Tensor, scale: Tensor) -> Tensor:
    """Bits of ``values`` under the discretised Gaussians (unit bins), as the coder spends them."""
    v = (values - mean).abs()
    inv = 1.0 / (scale * math.sqrt(2.0))
    p = 0.5 * torch.erfc((v - 0.5) * inv) - 0.5 * torch.erfc((v + 0.5) * inv)
    return -torch.log2(p.clamp_min(1e-9)).sum()


def rd_loss(problem: RefineProblem, latent: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(loss, bits per pixel, MSE) of coding ``latent`` (already integer-valued or relaxed)."""
    return _score(problem, gaussian_bits(latent, problem.mean, problem.scale), latent)


def _score(problem: RefineProblem, bits: Tensor, decoded: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    pixels = problem.target.shape[2] * problem.target.shape[3]
    bpp = bits / pixels
    mse = ((problem.synthesize(decoded) - problem.target) ** 2).mean()
    return bpp + problem.lam * 255.0**2 * mse, bpp, mse


def _coded_loss(problem: RefineProblem, latent: Tensor) -> Tensor:
    """The loss of what the coder will send for ``latent`` (hard rounding)."""
    if problem.context is not None:
        bits, decoded = problem.context(latent, torch.round)
        return _score(problem, bits, decoded)[0]
    return rd_loss(problem, hard_round(problem, latent))[0]


def _sga(temp: float, gen: torch.Generator) -> Callable[[Tensor], Tensor]:
    """Stochastic Gumbel annealing's relaxed rounding of a residual at temperature ``temp``."""
    eps = 1e-5

    def quantize(r: Tensor) -> Tensor:
        low = torch.floor(r).detach()
        frac = r - low
        logits = torch.stack([-torch.atanh(frac.clamp(eps, 1 - eps)) / temp,
                              -torch.atanh((1 - frac).clamp(eps, 1 - eps)) / temp], dim=-1)
        u = torch.rand(logits.shape, generator=gen).clamp(1e-9, 1 - 1e-9)
        gumbel = -torch.log(-torch.log(u))
        return low + torch.softmax((logits + gumbel) / temp, dim=-1)[..., 1]

    return quantize


def hard_round(problem: RefineProblem, latent: Tensor) -> Tensor:
    """The integer-valued latent the coder sends: the mean plus the rounded residual."""
    return problem.mean + torch.round(latent - problem.mean)


def refine(problem: RefineProblem, iterations: int, lr: float = 5e-3, seed: int = 0,
           progress: Progress | None = None) -> Tensor:
    """The refined latent (continuous; the coder rounds its residual), never worse than the
    analysis' own: both are scored after rounding and the better is returned.

    SGA: with ``r = latent - mean``, the relaxed sample is ``floor(r) + w`` where ``w`` is the
    "up" weight of a two-way Gumbel-softmax with logits ``-atanh(frac)/T`` (down) and
    ``-atanh(1 - frac)/T`` (up); ``T`` anneals from 0.5 to 0.05 (Yang et al. 2020, Sec. 3.2).
    The scales and means stay fixed, so every step's rate is the coder's.
    """
    if iterations <= 0:
        return problem.latent
    gen = torch.Generator().manual_seed(seed)
    latent = problem.latent.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([latent], lr=lr)
    decay = math.log(10.0) / max(1, iterations - 1)
    for it in range(iterations):
        quantize = _sga(0.5 * math.exp(-decay * it), gen)
        if problem.context is not None:
            bits, decoded = problem.context(latent, quantize)
            loss, bpp, mse = _score(problem, bits, decoded)
        else:
            loss, bpp, mse = rd_loss(problem, problem.mean + quantize(latent - problem.mean))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None and (it % 10 == 0 or it == iterations - 1):
            psnr = 10 * math.log10(1.0 / max(float(mse.detach()), 1e-12))
            progress(it + 1, iterations, f"refining: {float(bpp.detach()):.3f} bpp, {psnr:.2f} dB (relaxed)")
    with torch.no_grad():
        before = _coded_loss(problem, problem.latent)
        after = _coded_loss(problem, latent)
    return latent.detach() if after < before else problem.latent
