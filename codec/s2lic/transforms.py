"""S2LIC's transforms: residual SwinV2 blocks and a dense-block feature enhancement module.

S2LIC (Wang et al. 2024, Sec. 3.1) builds its analysis and synthesis from residual groups of
SwinV2 transformer blocks (Liu et al., "Swin Transformer V2: Scaling Up Capacity and
Resolution", CVPR 2022) between strided / sub-pixel resampling, and adds a feature
enhancement module of dense blocks (Huang et al., "Densely Connected Convolutional
Networks", CVPR 2017) to the synthesis. A SwinV2 block differs from the first Swin block in
three ways, all implemented here:

* **scaled cosine attention**: ``cos(q, k) / tau`` with a learnt per-head temperature
  (``tau >= 0.01``) instead of scaled dot products, which keeps attention logits bounded;
* **log-spaced continuous relative position bias**: a small MLP maps the log-spaced
  relative offset ``sign(d) log2(1 + |d|) / log2(8)`` (offsets first normalised to ``±8``) of
  every query-key pair in a window to a bias per head (``16 sigmoid``), so the bias carries
  over to other window sizes;
* **post-normalisation**: ``x + LN(attention(x))`` and ``x + LN(mlp(x))``.

Windows alternate between regular and shifted (by half a window, with the attention mask of
Liu et al. 2021 across the wrapped borders) and pad the feature map to a multiple of the
window, so any image size works.

Two sizes:

* ``LITE``: N=64, M=128 (the shipped hyperprior's latent; the staged recipe trains the ACGC
  entropy model on the hyperprior's latents first, and these transforms would be distilled
  from the hyperprior's next);
* ``PAPER``: N=192, M=320, 10 slices, as published. The paper gives no block depths or head
  counts in its text and its code imports modules that were never published; the depths
  (2, 4, 6, 2), 8 heads and 8x8 windows here follow the Swin-based transforms it builds on
  (TIC, Lu et al., DCC 2022). Defined and tested with one forward and backward pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..context import transforms as shared
from ..context.transforms import ContextTransforms, down, up
from .entropy_model import ACGCConfig, ACGCEntropyModel


@dataclass(frozen=True)
class S2LICConfig:
    N: int = 64
    M: int = 128
    depths: tuple[int, int, int, int] = (1, 1, 1, 1)  # SwinV2 blocks per residual group, per stage
    heads: int = 4
    window: int = 8
    dense_layers: int = 3
    dense_growth: int = 32
    lambdas: tuple[float, ...] = (0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483)
    entropy: ACGCConfig = field(default_factory=ACGCConfig)


LITE = S2LICConfig()
PAPER = S2LICConfig(N=192, M=320, depths=(2, 4, 6, 2), heads=8, window=8, dense_layers=4, dense_growth=64,
                    entropy=ACGCConfig(M=320, slices=10, hidden=192, hyper_embed=128, channel_features=128,
                                       channel_heads=4, inter_features=64, local_features=128))


class WindowAttentionV2(nn.Module):
    """Scaled cosine attention within windows, with the log-spaced continuous position bias."""

    coords: Tensor
    index: Tensor

    def __init__(self, dim: int, heads: int, window: int, cpb_hidden: int = 256):
        super().__init__()
        if dim % heads:
            raise ValueError(f"{dim} channels do not split into {heads} heads")
        self.heads = heads
        self.window = window
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones(heads, 1, 1)))
        self.cpb = nn.Sequential(nn.Linear(2, cpb_hidden), nn.ReLU(), nn.Linear(cpb_hidden, heads, bias=False))
        r = torch.arange(-(window - 1), window, dtype=torch.float32)
        table = torch.stack(torch.meshgrid(r, r, indexing="ij"), dim=-1)  # (2w-1, 2w-1, 2)
        table = table / max(window - 1, 1) * 8
        table = torch.sign(table) * torch.log2(table.abs() + 1.0) / math.log2(8)
        self.register_buffer("coords", table.reshape(-1, 2), persistent=False)
        pos = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = (pos[:, :, None] - pos[:, None, :]).permute(1, 2, 0) + (window - 1)
        self.register_buffer("index", (rel[..., 0] * (2 * window - 1) + rel[..., 1]).reshape(-1), persistent=False)

    def extra_macs(self, inputs: tuple[Tensor, ...], output: Tensor) -> int:
        """``Q K^T`` and ``A V`` (for :func:`codec.context.transforms.count_macs`)."""
        windows, n, dim = inputs[0].shape
        return 2 * windows * n * n * dim

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        Bw, n, C = x.shape
        qkv = self.qkv(x).reshape(Bw, n, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scale = torch.exp(self.logit_scale.clamp(max=math.log(100.0)))
        attn = (F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)) * scale
        bias = self.cpb(self.coords)[self.index].reshape(n, n, self.heads).permute(2, 0, 1)
        attn = attn + 16 * torch.sigmoid(bias)[None]
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(Bw // nw, nw, self.heads, n, n) + mask[None, :, None]
            attn = attn.view(Bw, self.heads, n, n)
        out = (torch.softmax(attn, dim=-1) @ v).transpose(1, 2).reshape(Bw, n, C)
        return self.proj(out)


def _windows(x: Tensor, w: int) -> Tensor:
    """(B, H, W, C) -> (B * H/w * W/w, w*w, C)."""
    B, H, W, C = x.shape
    return x.view(B, H // w, w, W // w, w, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, C)


def _unwindows(x: Tensor, w: int, B: int, H: int, W: int) -> Tensor:
    C = x.shape[-1]
    return x.view(B, H // w, W // w, w, w, C).permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, C)


def shift_mask(H: int, W: int, w: int, shift: int) -> Tensor:
    """The additive mask that keeps shifted windows from attending across the wrapped border
    (Liu et al. 2021): (windows, w*w, w*w), 0 or -100."""
    region = torch.zeros(1, H, W, 1)
    n = 0
    for hs in (slice(0, -w), slice(-w, -shift), slice(-shift, None)):
        for ws in (slice(0, -w), slice(-w, -shift), slice(-shift, None)):
            region[:, hs, ws] = n
            n += 1
    ids = _windows(region, w).squeeze(-1)
    diff = ids[:, None, :] - ids[:, :, None]
    return diff.ne(0).float() * -100.0


class SwinV2Block(nn.Module):
    """One SwinV2 block on a (B, C, H, W) map: post-norm window attention, then a post-norm MLP."""

    def __init__(self, dim: int, heads: int, window: int, shifted: bool, mlp_ratio: float = 2.0):
        super().__init__()
        self.window = window
        self.shifted = shifted
        self.attn = WindowAttentionV2(dim, heads, window)
        self.norm1 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        w = self.window
        Hp, Wp = -(-H // w) * w, -(-W // w) * w
        t = F.pad(x, (0, Wp - W, 0, Hp - H)).permute(0, 2, 3, 1)
        shift = w // 2 if self.shifted and min(Hp, Wp) > w else 0
        if shift:
            t = torch.roll(t, (-shift, -shift), dims=(1, 2))
        mask = shift_mask(Hp, Wp, w, shift).to(x.dtype) if shift else None
        a = _unwindows(self.attn(_windows(t, w), mask), w, B, Hp, Wp)
        if shift:
            a = torch.roll(a, (shift, shift), dims=(1, 2))
        t = x.permute(0, 2, 3, 1) + self.norm1(a[:, :H, :W])
        t = t + self.norm2(self.mlp(t))
        return t.permute(0, 3, 1, 2)


class ResidualSwinGroup(nn.Module):
    """``x + conv3x3(blocks(x))``: SwinV2 blocks with alternating shifts (the RSTB of SwinIR,
    Liang et al. 2021, as S2LIC uses it)."""

    def __init__(self, dim: int, depth: int, heads: int, window: int):
        super().__init__()
        self.blocks = nn.Sequential(*[SwinV2Block(dim, heads, window, shifted=bool(i % 2)) for i in range(depth)])
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(self.blocks(x))


class DenseEnhancement(nn.Module):
    """The feature enhancement module: a dense block (each 3x3 convolution sees the input and
    every earlier layer's output), a 1x1 fusion, and a residual connection."""

    def __init__(self, dim: int, layers: int, growth: int):
        super().__init__()
        self.layers = nn.ModuleList([nn.Sequential(nn.Conv2d(dim + i * growth, growth, 3, padding=1),
                                                   nn.LeakyReLU(0.2)) for i in range(layers)])
        self.fuse = nn.Conv2d(dim + layers * growth, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        feats = [x]
        for layer in self.layers:
            feats.append(layer(torch.cat(feats, dim=1)))
        return x + self.fuse(torch.cat(feats, dim=1))


class SwinV2Transforms(ContextTransforms):
    """SwinV2 analysis and synthesis (with the dense feature enhancement before the last
    upsampling) around the shared hyper transforms and gains."""

    def __init__(self, cfg: S2LICConfig = LITE):
        N, M, d = cfg.N, cfg.M, cfg.depths

        def group(c: int, depth: int) -> nn.Module:
            return ResidualSwinGroup(c, depth, cfg.heads, cfg.window)

        g_a = nn.Sequential(down(3, N), group(N, d[0]), down(N, N), group(N, d[1]), down(N, N), group(N, d[2]),
                            down(N, M), group(M, d[3]))
        g_s = nn.Sequential(group(M, d[3]), up(M, N), group(N, d[2]), up(N, N), group(N, d[1]), up(N, N),
                            group(N, d[0]), DenseEnhancement(N, cfg.dense_layers, cfg.dense_growth), up(N, 3))
        super().__init__(N, M, cfg.lambdas, g_a, g_s)
        self.config = cfg


def complexity(cfg: S2LICConfig, height: int = 256, width: int = 256) -> dict[str, float]:
    """Parameters and kMAC per pixel of a full model of size ``cfg``."""
    torch.manual_seed(0)
    return shared.complexity(SwinV2Transforms(cfg), ACGCEntropyModel(cfg.entropy), height, width)
