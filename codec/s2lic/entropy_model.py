"""S2LIC's ACGC entropy model (training side): adaptive channel-wise and global-inter
attention contexts over channel slices with checkerboard passes.

Wang, Liang, Zhang, Jiang, Wang & Liu, "S2LIC: Learned Image Compression with the SwinV2
Block, Adaptive Channel-wise and Global-inter Attention Context" (arXiv 2403.14471, 2024).

The latent ``y`` (M channels) is cut into ``slices`` channel slices; each is coded in two
checkerboard passes (He et al., CVPR 2021) by the shared loop of
:mod:`codec.context.slices`. Slice ``i`` sees, besides its hyperprior mean and scale and an
embedding of all the hyperprior's outputs:

* **adaptive channel-wise context** (``channel_attention``): attention *across channels* of
  the slices decoded before (transposed attention, as in Zamir et al., "Restormer", CVPR
  2022): queries, keys and values are feature maps, the ``d x d`` attention map comes from
  the products of whole query and key maps (``Q K^T / N`` over the ``N`` positions), so
  every channel of the context adapts its mix of the decoded channels to the image. Its cost
  is linear in the number of positions. Queries and keys are bounded to ``±attention_bound``
  (a clamp with an exact integer twin), which keeps the attention logits finite and the
  integer products far from overflow;
* **global-inter context** (``global_inter``): deformable attention (Zhu et al.,
  "Deformable DETR", ICLR 2021) that samples the decoded slices at ``points`` learned
  offsets per position (up to ``reach`` latent pixels away, bilinear interpolation, zero
  outside the latent) and weighs the samples by a softmax over the points; offsets and
  weights are predicted from the hyperprior embedding and the previous slice, so each
  position reaches the far-away decoded content that predicts it best;
* **local context** (``local``): a checkerboard convolution over the slice's decoded anchors
  (non-anchor pass);
* **latent residual prediction** (``lrp``, Minnen & Singh 2020).

Every operation has an exact integer twin in :mod:`codec.s2lic.integer` (bilinear weights in
fixed point, the softmax from the shared exp table), so table choices repeat on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..context.modules import CheckerboardConv, Leaky, conv1x1, conv3x3
from ..context.slices import SliceConfig, SliceHeads, SlicedEntropyModel


@dataclass(frozen=True)
class ACGCConfig(SliceConfig):
    """Everything that builds an :class:`ACGCEntropyModel`; stored with its weights."""

    channel_features: int = 32
    channel_heads: int = 2
    attention_bound: float = 16.0
    inter_features: int = 16
    points: int = 8
    reach: float = 8.0
    channel_attention: bool = True
    global_inter: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.channel_features % self.channel_heads:
            raise ValueError(f"{self.channel_features} channel features do not split into "
                             f"{self.channel_heads} heads")


class ChannelAttention(nn.Module):
    """The adaptive channel-wise context: attention across the channels of ``x``.

    ``f = leaky(proj(x))``; per head, ``A = softmax_rows(clamp(Q) clamp(K)^T / N)`` over the
    head's ``d/heads`` channels, ``out = leaky(out_proj(A V))``; ``V`` comes from a 3x3
    convolution, so the context also sees each position's neighbourhood."""

    def __init__(self, cin: int, d: int, heads: int, bound: float):
        super().__init__()
        self.proj = conv1x1(cin, d)
        self.q = conv1x1(d, d)
        self.k = conv1x1(d, d)
        self.v = conv3x3(d, d)
        self.out = conv1x1(d, d)
        self.heads = heads
        self.bound = bound
        self.act = Leaky()

    def extra_macs(self, inputs: tuple[Tensor, ...], output: Tensor) -> int:
        """``Q K^T`` and ``A V`` per head (for :func:`codec.context.transforms.count_macs`)."""
        n = inputs[0].shape[0] * inputs[0].shape[2] * inputs[0].shape[3]
        d = self.q.out_channels
        return 2 * n * d * (d // self.heads)

    def forward(self, x: Tensor) -> Tensor:
        B, _, h, w = x.shape
        f = self.act(self.proj(x))
        n, H = h * w, self.heads
        q = self.q(f).clamp(-self.bound, self.bound).reshape(B, H, -1, n)
        k = self.k(f).clamp(-self.bound, self.bound).reshape(B, H, -1, n)
        v = self.v(f).reshape(B, H, -1, n)
        attn = torch.softmax(q @ k.transpose(-1, -2) / n, dim=-1)
        return self.act(self.out((attn @ v).reshape(B, -1, h, w)))


def ring_offsets(points: int) -> list[tuple[float, float]]:
    """Initial sampling offsets (dy, dx): ``points`` directions, alternately at radius 2 and 5
    (the initialisation spread of Deformable DETR, in latent pixels)."""
    out = []
    for p in range(points):
        angle = 2 * math.pi * p / points
        r = 2.0 if p % 2 == 0 else 5.0
        out.append((r * math.sin(angle), r * math.cos(angle)))
    return out


def bilinear_sample(value: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
    """``value`` (B, D, h, w) sampled at each position plus the offsets ``dy``/``dx`` (B, P, h,
    w): bilinear interpolation with zeros outside (``grid_sample``, whose normalised
    coordinate ``(2p + 1) / size - 1`` is pixel ``p`` when corners are not aligned); returns
    (B, P, D, h, w)."""
    B, D, h, w = value.shape
    P = dy.shape[1]
    py = torch.arange(h, dtype=value.dtype)[:, None] + dy
    px = torch.arange(w, dtype=value.dtype)[None, :] + dx
    grid = torch.stack([(2 * px + 1) / w - 1, (2 * py + 1) / h - 1], dim=-1)  # (B, P, h, w, 2)
    grid = grid.permute(0, 2, 1, 3, 4).reshape(B, h, P * w, 2)
    out = F.grid_sample(value, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.view(B, D, h, P, w).permute(0, 3, 1, 2, 4)


class DeformableInterAttention(nn.Module):
    """The global-inter context: each position samples the decoded slices at ``points``
    learned offsets (bounded to ``±reach``) and mixes the samples with softmax weights."""

    def __init__(self, guide_channels: int, value_channels: int, d: int, points: int, reach: float):
        super().__init__()
        self.points = points
        self.reach = reach
        self.value = conv1x1(value_channels, d)
        self.sampling = conv3x3(guide_channels, 3 * points)
        nn.init.zeros_(self.sampling.weight)
        init = ring_offsets(points)
        with torch.no_grad():
            bias = torch.zeros(3 * points)
            bias[:points] = torch.tensor([o[0] for o in init])
            bias[points:2 * points] = torch.tensor([o[1] for o in init])
            self.sampling.bias.copy_(bias)  # type: ignore[union-attr]
        self.out = conv1x1(d, d)
        self.act = Leaky()

    def extra_macs(self, inputs: tuple[Tensor, ...], output: Tensor) -> int:
        """Four bilinear taps and the weighted sum per point and feature."""
        n = inputs[0].shape[0] * inputs[0].shape[2] * inputs[0].shape[3]
        return 5 * n * self.points * self.value.out_channels

    def forward(self, guide: Tensor, value: Tensor) -> Tensor:
        P = self.points
        s = self.sampling(guide)
        dy = s[:, :P].clamp(-self.reach, self.reach)
        dx = s[:, P:2 * P].clamp(-self.reach, self.reach)
        weights = torch.softmax(s[:, 2 * P:], dim=1)
        samples = bilinear_sample(self.value(value), dy, dx)
        return self.act(self.out((samples * weights[:, :, None]).sum(1)))


class ACGCSlice(SliceHeads):
    """The networks that predict slice ``index`` (see the module docstring)."""

    def __init__(self, index: int, cfg: ACGCConfig):
        C, E = cfg.slice_channels, cfg.hyper_embed
        has_channel = bool(index and cfg.channel_attention)
        has_inter = bool(index and cfg.global_inter)
        base = 2 * C + E + (cfg.channel_features if has_channel else 0) + (cfg.inter_features if has_inter else 0)
        super().__init__(cfg, base, cfg.local_features if cfg.local else 0)
        prev = index * C
        self.channel = ChannelAttention(prev, cfg.channel_features, cfg.channel_heads, cfg.attention_bound) \
            if has_channel else None
        self.inter = DeformableInterAttention(E + C, prev, cfg.inter_features, cfg.points, cfg.reach) \
            if has_inter else None
        self.local = nn.Sequential(CheckerboardConv(C, cfg.local_features, 5), Leaky()) if cfg.local else None


class ACGCEntropyModel(SlicedEntropyModel):
    """Means, scales and the decoded latent of a gained latent ``y``, slice by slice."""

    def __init__(self, cfg: ACGCConfig = ACGCConfig()):
        super().__init__(cfg)
        self.slices = nn.ModuleList([ACGCSlice(i, cfg) for i in range(cfg.slices)])

    def anchor_features(self, index: int, embed: Tensor, decoded: list[Tensor]) -> list[Tensor]:
        ctx: ACGCSlice = self.slices[index]  # type: ignore[assignment]
        feats = []
        if ctx.channel is not None or ctx.inter is not None:
            prev = torch.cat(decoded, dim=1)
            if ctx.channel is not None:
                feats.append(ctx.channel(prev))
            if ctx.inter is not None:
                feats.append(ctx.inter(torch.cat([embed, decoded[-1]], dim=1), prev))
        return feats

    def non_anchor_features(self, index: int, embed: Tensor, decoded: list[Tensor], anchors_u: Tensor,
                            anchor: Tensor) -> list[Tensor]:
        ctx: ACGCSlice = self.slices[index]  # type: ignore[assignment]
        return [ctx.local(anchors_u)] if ctx.local is not None else []

