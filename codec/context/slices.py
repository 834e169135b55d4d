"""The slice-by-slice entropy model loop (training side), shared by every sliced context model.

A model that codes the latent in channel slices and checkerboard passes predicts, for each
slice, a Gaussian mean and scale per element. What differs between models (MLICv2's
multi-reference contexts, S2LIC's channel-wise and global-inter attention) is only which
features the parameter heads see; the loop is the same:

1. the anchor head sees the slice's own hyperprior mean and scale, an embedding of all the
   hyperprior's outputs, and the model's *anchor features* (contexts from the slices decoded
   before); it predicts a correction of the hyperprior's mean and scale, so an untrained head
   is exactly the mean-scale hyperprior;
2. the anchors are quantised; the non-anchor head sees the anchor head's input plus the
   model's *non-anchor features* (contexts from the slice's decoded anchors);
3. latent residual prediction (Minnen & Singh, ICIP 2020) corrects the decoded slice by at
   most half a step, and the slice joins the contexts of the next ones.

Everything works in the gained domain of the hyperprior the model extends (Cui et al. 2021
gains, one row per quality): decoded slices feed the contexts ungained (``y_hat *
inv_gain``), and the heads' means and scales are ungained values times the quality's gain.
:mod:`codec.context.tiles` is the integer twin of this loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from .checkerboard import anchors
from .modules import Leaky, ParameterHead, conv1x1, residual_correction


C = TypeVar("C", bound="SliceConfig")


@dataclass(frozen=True)
class SliceConfig:
    """What every sliced model's config holds (a model's config subclasses it and adds its
    contexts' sizes and switches); stored with the weights as JSON."""

    M: int = 128
    slices: int = 8
    qualities: int = 6
    hidden: int = 64  # parameter heads' width
    hyper_embed: int = 32
    local_features: int = 32
    local: bool = True  # checkerboard context over the slice's anchors
    lrp: bool = True  # latent residual prediction
    scale_min: float = 0.11

    @property
    def slice_channels(self) -> int:
        return self.M // self.slices

    def __post_init__(self) -> None:
        if self.M % self.slices:
            raise ValueError(f"{self.M} latent channels do not split into {self.slices} equal slices")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls: type[C], text: str) -> C:
        return cls(**json.loads(text))


def round_ste(x: Tensor) -> Tensor:
    """Rounding with a straight-through gradient."""
    return x + (torch.round(x) - x).detach()


class SliceHeads(nn.Module):
    """The parts every slice has: the anchor and non-anchor parameter heads and the residual
    predictor. A model's slice module subclasses it and adds its contexts."""

    def __init__(self, cfg: SliceConfig, base: int, extra: int):
        super().__init__()
        C = cfg.slice_channels
        self.head_anchor = ParameterHead(base, 2 * C, cfg.hidden, cfg.qualities)
        self.head_non_anchor = ParameterHead(base + extra, 2 * C, cfg.hidden, cfg.qualities)
        self.residual = ParameterHead(base + C, C, cfg.hidden, cfg.qualities) if cfg.lrp else None


class SlicedEntropyModel(nn.Module):
    """Means, scales and the decoded latent of a gained latent ``y``, slice by slice.

    ``cfg`` is the model's config (a :class:`SliceConfig`). Subclasses build ``self.slices`` (one :class:`SliceHeads` per slice) and implement
    :meth:`anchor_features` and :meth:`non_anchor_features`."""

    slices: nn.ModuleList
    config: Any  # the subclass's SliceConfig

    def __init__(self, cfg: SliceConfig):
        super().__init__()
        self.config = cfg
        self.hyper_embed = nn.Sequential(conv1x1(2 * cfg.M, 2 * cfg.hidden), Leaky(),
                                         conv1x1(2 * cfg.hidden, cfg.hyper_embed), Leaky())

    def anchor_features(self, index: int, embed: Tensor, decoded: list[Tensor]) -> list[Tensor]:
        """Contexts of slice ``index`` from the slices decoded before (ungained)."""
        raise NotImplementedError

    def non_anchor_features(self, index: int, embed: Tensor, decoded: list[Tensor], anchors_u: Tensor,
                            anchor: Tensor) -> list[Tensor]:
        """Contexts of the slice's non-anchors from its decoded anchors ``anchors_u`` (ungained,
        zero at non-anchors; ``anchor`` is the boolean anchor map)."""
        raise NotImplementedError

    def forward(self, y: Tensor, hyper: Tensor, gain: Tensor, inv_gain: Tensor, q: Tensor,
                quantize: Callable[[Tensor], Tensor] = round_ste) -> dict[str, Tensor]:
        """``y``: gained latent (B, M, h, w); ``hyper``: the hyper-synthesis outputs (B, 2M, h,
        w), ungained means then scales; ``gain``/``inv_gain``: (B, M, 1, 1); ``q``: quality
        indices (B,); ``quantize``: residual -> integer (rounding with a straight-through
        gradient in training; a relaxed sample in encode-time refinement). Returns gained
        ``mu``, ``sigma``, the quantised ``y_q`` and ``y_hat`` (``y_q`` plus the residual
        prediction)."""
        cfg = self.config
        C, M = cfg.slice_channels, cfg.M
        h, w = y.shape[2:]
        anchor = torch.from_numpy(anchors(h, w))
        embed = self.hyper_embed(hyper)
        decoded: list[Tensor] = []
        mus, sigmas, y_qs, y_hats = [], [], [], []
        for i in range(cfg.slices):
            heads: SliceHeads = self.slices[i]  # type: ignore[assignment]
            sl = slice(i * C, (i + 1) * C)
            g, ig = gain[:, sl], inv_gain[:, sl]
            own = torch.cat([hyper[:, sl], hyper[:, M + i * C:M + (i + 1) * C]], dim=1)
            base = torch.cat([own, embed, *self.anchor_features(i, embed, decoded)], dim=1)
            out_a = heads.head_anchor(base, q) + own
            y_i = y[:, sl]
            mu_a = out_a[:, :C] * g
            q_a = quantize(y_i - mu_a) + mu_a
            anchors_u = q_a * ig * anchor
            extra = self.non_anchor_features(i, embed, decoded, anchors_u, anchor)
            out_n = heads.head_non_anchor(torch.cat([base, *extra], dim=1), q) + own
            out = torch.where(anchor, out_a, out_n)
            mu = out[:, :C] * g
            sigma = out[:, C:].abs().clamp_min(cfg.scale_min) * g
            mu_n = out_n[:, :C] * g
            y_q = torch.where(anchor, q_a, quantize(y_i - mu_n) + mu_n)
            y_hat = y_q
            if heads.residual is not None:
                y_hat = y_q + residual_correction(heads.residual(torch.cat([base, y_q * ig], dim=1), q))
            decoded.append(y_hat * ig)
            mus.append(mu)
            sigmas.append(sigma)
            y_qs.append(y_q)
            y_hats.append(y_hat)
        return {"mu": torch.cat(mus, 1), "sigma": torch.cat(sigmas, 1), "y_q": torch.cat(y_qs, 1),
                "y_hat": torch.cat(y_hats, 1)}
