"""Trainable context pieces, each made of operations with an exact integer counterpart.

Every operation here has a twin in :mod:`codec.context.integer` that coding runs instead, so
that table choices repeat on every machine: convolutions and linear layers (fixed-point
layers of :mod:`codec.fixedpoint`), a LeakyReLU of slope ``41/4096`` (an integer multiply and
shift), the hard sigmoid ``clip(x/6 + 1/2, 0, 1)`` and hard tanh (integer division and
clipping), mean pooling (an integer sum and floor division) and softmax (an exponential
lookup table and integer normalisation). Nothing uses GELU, erf or float division at coding
time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checkerboard import neighbour_mask

LEAK_NUMERATOR = 41
LEAK_SHIFT = 12
LEAK_SLOPE = LEAK_NUMERATOR / (1 << LEAK_SHIFT)


class Leaky(nn.Module):
    """LeakyReLU with the integer-friendly slope 41/4096 (about 0.01)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, LEAK_SLOPE)


def conv1x1(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1)


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class CheckerboardConv(nn.Conv2d):
    """A convolution that sees only the anchor neighbours of a non-anchor position (He et
    al. 2021): the taps at an even city-block distance from the centre are zero."""

    mask: Tensor

    def __init__(self, cin: int, cout: int, kernel: int = 5):
        super().__init__(cin, cout, kernel, padding=kernel // 2)
        self.register_buffer("mask", torch.from_numpy(neighbour_mask(kernel)).float(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class ParameterHead(nn.Module):
    """Three 1x1 convolutions with LeakyReLU between them; a per-quality bias after the first
    (one gain-modulated model serves every quality, so each quality may shift the features).
    The last layer starts at zero: the head begins as a correction of nothing."""

    def __init__(self, cin: int, cout: int, hidden: int, qualities: int):
        super().__init__()
        last = conv1x1(hidden, cout)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)  # type: ignore[arg-type]
        self.layers = nn.ModuleList([conv1x1(cin, hidden), conv1x1(hidden, hidden), last])
        self.quality_bias = nn.Parameter(torch.zeros(qualities, hidden))
        self.act = Leaky()

    def forward(self, x: Tensor, q: Tensor) -> Tensor:
        h = self.act(self.layers[0](x) + self.quality_bias[q][:, :, None, None])
        h = self.act(self.layers[1](h))
        return self.layers[2](h)


class ChannelReweight(nn.Module):
    """Squeeze-and-excitation reweighting of the decoded slices before the channel context
    (Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018), with a hard sigmoid: the
    channel reweighting of MLICv2 (Jiang et al. 2025), which lets the model weigh the
    channels that predict the current slice best."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)
        self.act = Leaky()

    def forward(self, x: Tensor) -> Tensor:
        w = F.hardsigmoid(self.fc2(self.act(self.fc1(x.mean((2, 3))))))
        return x * w[:, :, None, None]


class LinearAttention(nn.Module):
    """Efficient attention (Shen et al., "Efficient Attention: Attention with Linear
    Complexities", WACV 2021): ``softmax_channels(Q) (softmax_positions(K)^T V)``, linear in
    the number of positions, as the global contexts of MLIC++ and MLICv2 use it.

    Queries and keys come from a *guide* (the hyperprior's features and the previous slice:
    the hyperprior-guided global correlation prediction of MLICv2 gives even the first slice
    a global context), after a convolutional positional encoding ``g + conv3x3(g)`` (Chu et
    al., "Conditional Positional Encodings for Vision Transformers", ICLR 2023) that works at
    any image size. ``key_mask`` restricts the keys to decoded positions (the anchors).
    """

    def __init__(self, guide_channels: int, value_channels: int, dk: int = 16, dv: int = 16):
        super().__init__()
        self.position = conv3x3(guide_channels, guide_channels)
        self.q = conv1x1(guide_channels, dk)
        self.k = conv1x1(guide_channels, dk)
        self.v = conv1x1(value_channels, dv)
        self.dv = dv

    def extra_macs(self, inputs: tuple[Tensor, ...], output: Tensor) -> int:
        """The two attention products (for :func:`codec.context.transforms.count_macs`)."""
        n = inputs[0].shape[2] * inputs[0].shape[3]
        return 2 * n * self.q.out_channels * self.dv

    def forward(self, guide: Tensor, value: Tensor, key_mask: Tensor | None = None) -> Tensor:
        B, _, h, w = guide.shape
        g = guide + self.position(guide)
        q = torch.softmax(self.q(g).flatten(2), dim=1)
        k = self.k(g).flatten(2)
        if key_mask is not None:
            k = k.masked_fill(~key_mask.flatten()[None, None, :], float("-inf"))
        k = torch.softmax(k, dim=2)
        v = self.v(value).flatten(2)
        context = torch.bmm(k, v.transpose(1, 2))  # B, dk, dv
        return torch.bmm(context.transpose(1, 2), q).view(B, self.dv, h, w)


def residual_correction(x: Tensor) -> Tensor:
    """Latent residual prediction's bound: at most half a quantisation step either way
    (Minnen & Singh 2020 use ``0.5 tanh``; the hard tanh has an integer twin)."""
    return 0.5 * F.hardtanh(x)
