"""What the transforms of the sliced context codecs share, and their complexity counts.

MLICv2 and S2LIC differ in their analysis and synthesis transforms (token-mixing blocks,
SwinV2 blocks); the rest is common and lives here: strided and sub-pixel resampling, the
mean-scale hyper transforms (Minnen et al. 2018), per-quality gains (Cui et al. 2021), the
factorised hyper-latent prior, one training forward pass through any sliced entropy model,
and :func:`count_macs`, which counts multiply-accumulates by hooks on every convolution,
linear layer and attention product (modules with an ``extra_macs(inputs, output)`` method
report their own products).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from ..hyperprior.model import LIKELIHOOD_MIN, gaussian_likelihood
from .slices import SlicedEntropyModel


def down(cin: int, cout: int) -> nn.Module:
    return nn.Conv2d(cin, cout, 5, stride=2, padding=2)


def up(cin: int, cout: int) -> nn.Module:
    """Sub-pixel upsampling (Shi et al., CVPR 2016)."""
    return nn.Sequential(nn.Conv2d(cin, cout * 4, 3, padding=1), nn.PixelShuffle(2))


class ContextTransforms(nn.Module):
    """Analysis ``g_a`` and synthesis ``g_s`` (given), the hyper transforms, per-quality gains
    and the hyper-latent prior of a model with N feature and M latent channels."""

    def __init__(self, N: int, M: int, lambdas: Sequence[float], g_a: nn.Module, g_s: nn.Module):
        super().__init__()
        from ..hyperprior.model import _compressai_layers

        _, EntropyBottleneck = _compressai_layers()
        self.g_a = g_a
        self.g_s = g_s
        self.h_a = nn.Sequential(nn.Conv2d(M, N, 3, padding=1), nn.LeakyReLU(), down(N, N), nn.LeakyReLU(),
                                 down(N, N))
        self.h_s = nn.Sequential(nn.ConvTranspose2d(N, M, 5, 2, 2, 1), nn.LeakyReLU(),
                                 nn.ConvTranspose2d(M, M * 3 // 2, 5, 2, 2, 1), nn.LeakyReLU(),
                                 nn.Conv2d(M * 3 // 2, 2 * M, 3, padding=1))
        self.entropy_bottleneck = EntropyBottleneck(N)
        lam = torch.tensor(list(lambdas))
        spread = 0.5 * torch.log(lam / lam[len(lam) // 2])
        self.log_gain = nn.Parameter(spread[:, None].repeat(1, M))
        self.log_inv_gain = nn.Parameter(-spread[:, None].repeat(1, M))
        self.log_hgain = nn.Parameter(0.5 * spread[:, None].repeat(1, N))
        self.log_inv_hgain = nn.Parameter(-0.5 * spread[:, None].repeat(1, N))

    def forward(self, x: Tensor, q: Tensor, em: SlicedEntropyModel) -> dict[str, Tensor]:
        def pick(p: Tensor) -> Tensor:
            return torch.exp(p[q])[:, :, None, None]

        gain, inv_gain, hgain, inv_hgain = (pick(p) for p in (self.log_gain, self.log_inv_gain, self.log_hgain,
                                                                self.log_inv_hgain))
        y0 = self.g_a(x)
        y = y0 * gain
        z = self.h_a(y0) * hgain
        z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5)
        z_hat = z + (torch.round(z) - z).detach()
        hyper = self.h_s(z_hat * inv_hgain)
        out = em(y, hyper, gain, inv_gain, q)
        y_noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        y_bits = -torch.log2(gaussian_likelihood(y_noisy, out["mu"], out["sigma"])).sum((1, 2, 3))
        C = z.shape[1]
        flat = z_noisy.permute(1, 0, 2, 3).reshape(C, 1, -1)
        lik, _, _ = self.entropy_bottleneck._likelihood(flat)  # type: ignore[operator]
        z_bits = -torch.log2(lik.clamp_min(LIKELIHOOD_MIN)).reshape(C, z.shape[0], -1).sum((0, 2))
        pixels = x.shape[2] * x.shape[3]
        return {"x_hat": self.g_s(out["y_hat"] * inv_gain), "bpp": (y_bits + z_bits) / pixels}


@torch.no_grad()
def count_macs(run: Callable[[], object], modules: nn.Module) -> int:
    """Multiply-accumulates of ``run()`` in the convolutions, linear layers and attention
    products of ``modules``."""
    total = [0]
    hooks = []

    def conv(m: nn.Module, inp: tuple[Tensor, ...], out: Tensor) -> None:
        if isinstance(m, nn.ConvTranspose2d):
            total[0] += inp[0].numel() * m.out_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
        elif isinstance(m, nn.Conv2d):
            taps = m.kernel_size[0] * m.kernel_size[1]
            mask = getattr(m, "mask", None)
            if mask is not None:
                taps = int(mask.sum())
            total[0] += out.numel() * (m.in_channels // m.groups) * taps
        elif isinstance(m, nn.Linear):
            total[0] += out.numel() * m.in_features

    def products(m: nn.Module, inp: tuple[Tensor, ...], out: Tensor) -> None:
        total[0] += int(m.extra_macs(inp, out))  # type: ignore[operator]

    for m in modules.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            hooks.append(m.register_forward_hook(conv))
        elif hasattr(m, "extra_macs"):
            hooks.append(m.register_forward_hook(products))
    try:
        run()
    finally:
        for h in hooks:
            h.remove()
    return total[0]


@torch.no_grad()
def complexity(model: ContextTransforms, em: SlicedEntropyModel, height: int = 256, width: int = 256
               ) -> dict[str, float]:
    """Parameters and kMAC per pixel of a full model (all transforms and the entropy model, as
    one encode runs them; the decoder skips the analysis transforms)."""
    model.eval()
    em.eval()
    x = torch.rand(1, 3, height, width)
    both = nn.ModuleList([model, em])
    macs = count_macs(lambda: model(x, torch.tensor([0]), em), both)
    y0 = model.g_a(x)
    analysis = count_macs(lambda: model.g_a(x), model.g_a) + count_macs(lambda: model.h_a(y0), model.h_a)
    params = sum(p.numel() for p in both.parameters())
    return {"parameters": params, "kmac_per_pixel": macs / (height * width) / 1000,
            "decode_kmac_per_pixel": (macs - analysis) / (height * width) / 1000}
