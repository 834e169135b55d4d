"""MLICv2's multi-reference entropy model (training side).

Jiang, Zhai & Wang, "MLICv2: Enhanced Multi-Reference Entropy Modeling for Learned Image
Compression" (2025), after Jiang et al., "MLIC++: Linear Complexity Multi-Reference Entropy
Modeling for Learned Image Compression" (ICML 2023 workshop / TOMM 2025).

The latent ``y`` (M channels) is cut into ``slices`` channel slices, each coded in two
checkerboard passes. The Gaussian mean and scale of every element come from references of
several kinds, each of which a config flag can switch off (for the ablation):

* **hyperprior**: the hyper-synthesis' own mean and scale for the slice (the heads predict a
  correction to them, so an untrained head is exactly the mean-scale hyperprior) and an
  embedding of all its outputs;
* **channel context** (``channel``): a convolution over the slices decoded before, after
* **channel reweighting** (``reweight``): squeeze-and-excitation weights per decoded channel;
* **local spatial context** (``local``): a checkerboard convolution over the slice's decoded
  anchors (non-anchor pass);
* **global spatial context** (``global_context``): linear attention whose queries and keys
  come from a guide; in the anchor pass the values are the previous slice (the inter-slice
  global context of MLIC++), in the non-anchor pass the slice's own anchors with keys limited
  to them (intra-slice);
* **hyperprior-guided global correlation** (``hyper_guided``): the guide includes the
  hyperprior embedding, so the first slice, which has no decoded slice before it, gets a
  global context predicted from the hyperprior alone;
* **latent residual prediction** (``lrp``, Minnen & Singh 2020): a bounded correction of each
  decoded slice from its context, which lowers the quantisation error.

The model works in the gained domain of the hyperprior it extends (Cui et al. 2021 gains, one
row per quality): decoded slices feed the contexts ungained (``y_hat * inv_gain``), and the
heads' means and scales are ungained values multiplied by the quality's gain, exactly as the
hyperprior's are.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from ..context.checkerboard import anchors
from ..context.modules import (ChannelReweight, CheckerboardConv, Leaky, LinearAttention, ParameterHead, conv1x1,
                               conv3x3, residual_correction)


@dataclass(frozen=True)
class EntropyModelConfig:
    """Everything that builds a :class:`MultiReferenceEntropyModel`; stored with its weights."""

    M: int = 128
    slices: int = 8
    qualities: int = 6
    hidden: int = 64
    hyper_embed: int = 32
    channel_features: int = 32
    local_features: int = 32
    attention_dims: int = 16
    channel: bool = True
    reweight: bool = True
    local: bool = True
    global_context: bool = True
    hyper_guided: bool = True
    lrp: bool = True
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
    def from_json(cls, text: str) -> "EntropyModelConfig":
        return cls(**json.loads(text))


def _round_ste(x: Tensor) -> Tensor:
    return x + (torch.round(x) - x).detach()


class SliceContext(nn.Module):
    """The networks that predict slice ``index`` (see the module docstring)."""

    def __init__(self, index: int, cfg: EntropyModelConfig):
        super().__init__()
        C, E = cfg.slice_channels, cfg.hyper_embed
        self.index = index
        prev = index * C
        self.reweight = ChannelReweight(prev, max(8, prev // 4)) if index and cfg.channel and cfg.reweight else None
        self.channel = nn.Sequential(conv3x3(prev, 2 * cfg.channel_features), Leaky(),
                                     conv1x1(2 * cfg.channel_features, cfg.channel_features), Leaky()) \
            if index and cfg.channel else None
        guide = self.guide_channels(index, cfg)
        d = cfg.attention_dims
        self.inter = LinearAttention(guide, C if index else E, d, d) if cfg.global_context and guide else None
        self.intra = LinearAttention(guide, C, d, d) if cfg.global_context and guide else None
        self.local = nn.Sequential(CheckerboardConv(C, cfg.local_features, 5), Leaky()) if cfg.local else None
        base = self.base_channels(index, cfg)
        extra = (d if self.intra else 0) + (cfg.local_features if self.local else 0)
        self.head_anchor = ParameterHead(base, 2 * C, cfg.hidden, cfg.qualities)
        self.head_non_anchor = ParameterHead(base + extra, 2 * C, cfg.hidden, cfg.qualities)
        self.residual = ParameterHead(base + C, C, cfg.hidden, cfg.qualities) if cfg.lrp else None

    @staticmethod
    def guide_channels(index: int, cfg: EntropyModelConfig) -> int:
        return (cfg.hyper_embed if cfg.hyper_guided else 0) + (cfg.slice_channels if index else 0)

    def base_channels(self, index: int, cfg: EntropyModelConfig) -> int:
        return (2 * cfg.slice_channels + cfg.hyper_embed + (cfg.channel_features if self.channel else 0)
                + (cfg.attention_dims if self.inter else 0))


class MultiReferenceEntropyModel(nn.Module):
    """Means, scales and the decoded latent of a gained latent ``y``, slice by slice."""

    def __init__(self, cfg: EntropyModelConfig = EntropyModelConfig()):
        super().__init__()
        self.config = cfg
        self.hyper_embed = nn.Sequential(conv1x1(2 * cfg.M, 2 * cfg.hidden), Leaky(),
                                         conv1x1(2 * cfg.hidden, cfg.hyper_embed), Leaky())
        self.slices = nn.ModuleList([SliceContext(i, cfg) for i in range(cfg.slices)])

    def forward(self, y: Tensor, hyper: Tensor, gain: Tensor, inv_gain: Tensor, q: Tensor,
                quantize: Callable[[Tensor], Tensor] = _round_ste) -> dict[str, Tensor]:
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
        contexts: list[SliceContext] = list(self.slices)  # type: ignore[arg-type]
        for i, ctx in enumerate(contexts):
            sl = slice(i * C, (i + 1) * C)
            g, ig = gain[:, sl], inv_gain[:, sl]
            own = torch.cat([hyper[:, sl], hyper[:, M + i * C:M + (i + 1) * C]], dim=1)
            feats = [own, embed]
            if ctx.channel is not None:
                prev = torch.cat(decoded, dim=1)
                feats.append(ctx.channel(ctx.reweight(prev) if ctx.reweight is not None else prev))
            guide = self._guide(embed, decoded)
            if ctx.inter is not None:
                feats.append(ctx.inter(guide, decoded[-1] if i else embed))
            base = torch.cat(feats, dim=1)
            out_a = ctx.head_anchor(base, q) + own
            y_i = y[:, sl]
            mu_a = out_a[:, :C] * g
            q_a = quantize(y_i - mu_a) + mu_a
            anchors_u = q_a * ig * anchor
            extra = [base]
            if ctx.intra is not None:
                extra.append(ctx.intra(guide, anchors_u, key_mask=anchor))
            if ctx.local is not None:
                extra.append(ctx.local(anchors_u))
            out_n = ctx.head_non_anchor(torch.cat(extra, dim=1), q) + own
            out = torch.where(anchor, out_a, out_n)
            mu = out[:, :C] * g
            sigma = out[:, C:].abs().clamp_min(cfg.scale_min) * g
            mu_n = out_n[:, :C] * g
            y_q = torch.where(anchor, q_a, quantize(y_i - mu_n) + mu_n)
            y_hat = y_q
            if ctx.residual is not None:
                y_hat = y_q + residual_correction(ctx.residual(torch.cat([base, y_q * ig], dim=1), q))
            decoded.append(y_hat * ig)
            mus.append(mu)
            sigmas.append(sigma)
            y_qs.append(y_q)
            y_hats.append(y_hat)
        return {"mu": torch.cat(mus, 1), "sigma": torch.cat(sigmas, 1), "y_q": torch.cat(y_qs, 1),
                "y_hat": torch.cat(y_hats, 1)}

    def _guide(self, embed: Tensor, decoded: list[Tensor]) -> Tensor:
        parts = ([embed] if self.config.hyper_guided else []) + decoded[-1:]
        return torch.cat(parts, dim=1) if parts else embed[:, :0]
