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

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..context.modules import ChannelReweight, CheckerboardConv, Leaky, LinearAttention, conv1x1, conv3x3
from ..context.slices import SliceConfig, SliceHeads, SlicedEntropyModel


@dataclass(frozen=True)
class EntropyModelConfig(SliceConfig):
    """Everything that builds a :class:`MultiReferenceEntropyModel`; stored with its weights."""

    channel_features: int = 32
    attention_dims: int = 16
    channel: bool = True
    reweight: bool = True
    global_context: bool = True
    hyper_guided: bool = True


class SliceContext(SliceHeads):
    """The networks that predict slice ``index`` (see the module docstring)."""

    def __init__(self, index: int, cfg: EntropyModelConfig):
        C, E = cfg.slice_channels, cfg.hyper_embed
        prev = index * C
        guide = self.guide_channels(index, cfg)
        d = cfg.attention_dims
        has_channel = bool(index and cfg.channel)
        has_attention = bool(cfg.global_context and guide)
        base = (2 * C + E + (cfg.channel_features if has_channel else 0) + (d if has_attention else 0))
        extra = (d if has_attention else 0) + (cfg.local_features if cfg.local else 0)
        super().__init__(cfg, base, extra)
        self.index = index
        self.reweight = ChannelReweight(prev, max(8, prev // 4)) if has_channel and cfg.reweight else None
        self.channel = nn.Sequential(conv3x3(prev, 2 * cfg.channel_features), Leaky(),
                                     conv1x1(2 * cfg.channel_features, cfg.channel_features), Leaky()) \
            if has_channel else None
        self.inter = LinearAttention(guide, C if index else E, d, d) if has_attention else None
        self.intra = LinearAttention(guide, C, d, d) if has_attention else None
        self.local = nn.Sequential(CheckerboardConv(C, cfg.local_features, 5), Leaky()) if cfg.local else None

    @staticmethod
    def guide_channels(index: int, cfg: EntropyModelConfig) -> int:
        return (cfg.hyper_embed if cfg.hyper_guided else 0) + (cfg.slice_channels if index else 0)


class MultiReferenceEntropyModel(SlicedEntropyModel):
    """Means, scales and the decoded latent of a gained latent ``y``, slice by slice."""

    def __init__(self, cfg: EntropyModelConfig = EntropyModelConfig()):
        super().__init__(cfg)
        self.slices = nn.ModuleList([SliceContext(i, cfg) for i in range(cfg.slices)])

    def _guide(self, embed: Tensor, decoded: list[Tensor]) -> Tensor:
        parts = ([embed] if self.config.hyper_guided else []) + decoded[-1:]
        return torch.cat(parts, dim=1) if parts else embed[:, :0]

    def anchor_features(self, index: int, embed: Tensor, decoded: list[Tensor]) -> list[Tensor]:
        ctx: SliceContext = self.slices[index]  # type: ignore[assignment]
        feats = []
        if ctx.channel is not None:
            prev = torch.cat(decoded, dim=1)
            feats.append(ctx.channel(ctx.reweight(prev) if ctx.reweight is not None else prev))
        if ctx.inter is not None:
            feats.append(ctx.inter(self._guide(embed, decoded), decoded[-1] if index else embed))
        return feats

    def non_anchor_features(self, index: int, embed: Tensor, decoded: list[Tensor], anchors_u: Tensor,
                            anchor: Tensor) -> list[Tensor]:
        ctx: SliceContext = self.slices[index]  # type: ignore[assignment]
        feats = []
        if ctx.intra is not None:
            feats.append(ctx.intra(self._guide(embed, decoded), anchors_u, key_mask=anchor))
        if ctx.local is not None:
            feats.append(ctx.local(anchors_u))
        return feats
