"""MLICv2's token-mixing transforms, the two model sizes, and their complexity.

MLICv2 (Jiang, Zhai & Wang 2025, Sec. 3.1) replaces the transforms of the MLIC series with
simple token-mixing blocks in the MetaFormer style (Yu et al., "MetaFormer Is Actually What You
Need for Vision", CVPR 2022): a residual token mixer followed by a residual channel MLP. The
token mixer here is a depthwise 7x7 convolution (the ConvFormer mixer of Yu et al.,
"MetaFormer Baselines for Vision", TPAMI 2024); the paper finds such blocks fix the MLIC
series' loss at high rates. Downsampling and upsampling are strided and sub-pixel
convolutions between stages; the hyper transforms are those of the mean-scale hyperprior.

Two sizes:

* ``LITE``: N=64, M=128 (the shipped hyperprior's latent, so stage 1 trains the entropy
  model on its latents and stage 2 distils these transforms from it);
* ``PAPER``: N=192, M=320, 10 slices, as in the paper; defined and tested here (one
  forward and backward pass), trained only where a GPU is available.

:func:`complexity` counts parameters and multiply-accumulates per pixel by running the
model with hooks on every convolution, linear layer and attention product.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..context.modules import LinearAttention
from ..hyperprior.model import LIKELIHOOD_MIN, gaussian_likelihood
from .entropy_model import EntropyModelConfig, MultiReferenceEntropyModel


@dataclass(frozen=True)
class MLICv2Config:
    N: int = 64
    M: int = 128
    blocks: int = 1  # token-mixing blocks per stage
    lambdas: tuple[float, ...] = (0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483)
    entropy: EntropyModelConfig = field(default_factory=EntropyModelConfig)


LITE = MLICv2Config()
PAPER = MLICv2Config(N=192, M=320, blocks=2, entropy=EntropyModelConfig(
    M=320, slices=10, hidden=192, hyper_embed=128, channel_features=128, local_features=128, attention_dims=64))


class TokenMixingBlock(nn.Module):
    """``x + dwconv7(x)``, then ``x + W2 gelu(W1 x)`` (MetaFormer with a ConvFormer mixer)."""

    def __init__(self, channels: int, expansion: int = 2):
        super().__init__()
        self.mixer = nn.Conv2d(channels, channels, 7, padding=3, groups=channels)
        self.mlp = nn.Sequential(nn.Conv2d(channels, expansion * channels, 1), nn.GELU(),
                                 nn.Conv2d(expansion * channels, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.mixer(x)
        return x + self.mlp(x)


def _down(cin: int, cout: int) -> nn.Module:
    return nn.Conv2d(cin, cout, 5, stride=2, padding=2)


def _up(cin: int, cout: int) -> nn.Module:
    """Sub-pixel upsampling (Shi et al., CVPR 2016)."""
    return nn.Sequential(nn.Conv2d(cin, cout * 4, 3, padding=1), nn.PixelShuffle(2))


class TokenMixingTransforms(nn.Module):
    """Analysis, synthesis and hyper transforms, per-quality gains, the hyper-latent prior."""

    def __init__(self, cfg: MLICv2Config = LITE):
        super().__init__()
        from ..hyperprior.model import _compressai_layers

        _, EntropyBottleneck = _compressai_layers()
        N, M, k = cfg.N, cfg.M, cfg.blocks
        self.config = cfg

        def blocks(c: int) -> list[nn.Module]:
            return [TokenMixingBlock(c) for _ in range(k)]

        self.g_a = nn.Sequential(_down(3, N), *blocks(N), _down(N, N), *blocks(N), _down(N, N), *blocks(N),
                                 _down(N, M))
        self.g_s = nn.Sequential(_up(M, N), *blocks(N), _up(N, N), *blocks(N), _up(N, N), *blocks(N), _up(N, 3))
        self.h_a = nn.Sequential(nn.Conv2d(M, N, 3, padding=1), nn.LeakyReLU(), _down(N, N), nn.LeakyReLU(),
                                 _down(N, N))
        self.h_s = nn.Sequential(nn.ConvTranspose2d(N, M, 5, 2, 2, 1), nn.LeakyReLU(),
                                 nn.ConvTranspose2d(M, M * 3 // 2, 5, 2, 2, 1), nn.LeakyReLU(),
                                 nn.Conv2d(M * 3 // 2, 2 * M, 3, padding=1))
        self.entropy_bottleneck = EntropyBottleneck(N)
        lam = torch.tensor(cfg.lambdas)
        spread = 0.5 * torch.log(lam / lam[len(lam) // 2])
        self.log_gain = nn.Parameter(spread[:, None].repeat(1, M))
        self.log_inv_gain = nn.Parameter(-spread[:, None].repeat(1, M))
        self.log_hgain = nn.Parameter(0.5 * spread[:, None].repeat(1, N))
        self.log_inv_hgain = nn.Parameter(-0.5 * spread[:, None].repeat(1, N))

    def forward(self, x: Tensor, q: Tensor, em: MultiReferenceEntropyModel) -> dict[str, Tensor]:
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


def _attention_macs(module: LinearAttention, guide: Tensor) -> int:
    n = guide.shape[2] * guide.shape[3]
    dk = module.q.out_channels
    return 2 * n * dk * module.dv


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

    def attention(m: nn.Module, inp: tuple[Tensor, ...], out: Tensor) -> None:
        total[0] += _attention_macs(m, inp[0])  # type: ignore[arg-type]

    for m in modules.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            hooks.append(m.register_forward_hook(conv))
        elif isinstance(m, LinearAttention):
            hooks.append(m.register_forward_hook(attention))
    try:
        run()
    finally:
        for h in hooks:
            h.remove()
    return total[0]


@torch.no_grad()
def complexity(cfg: MLICv2Config, height: int = 256, width: int = 256) -> dict[str, float]:
    """Parameters and kMAC per pixel of a full model of size ``cfg`` (all transforms and the
    entropy model, as one encode runs them; the decoder skips the analysis transforms)."""
    torch.manual_seed(0)
    model = TokenMixingTransforms(cfg).eval()
    em = MultiReferenceEntropyModel(cfg.entropy).eval()
    x = torch.rand(1, 3, height, width)
    both = nn.ModuleList([model, em])
    macs = count_macs(lambda: model(x, torch.tensor([0]), em), both)
    y0 = model.g_a(x)
    analysis = count_macs(lambda: model.g_a(x), model.g_a) + count_macs(lambda: model.h_a(y0), model.h_a)
    params = sum(p.numel() for p in both.parameters())
    return {"parameters": params, "kmac_per_pixel": macs / (height * width) / 1000,
            "decode_kmac_per_pixel": (macs - analysis) / (height * width) / 1000}
