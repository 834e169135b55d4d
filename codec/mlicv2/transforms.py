"""MLICv2's token-mixing transforms, the two model sizes, and their complexity.

MLICv2 (Jiang, Zhai & Wang 2025, Sec. 3.1) replaces the transforms of the MLIC series with
simple token-mixing blocks in the MetaFormer style (Yu et al., "MetaFormer Is Actually What You
Need for Vision", CVPR 2022): a residual token mixer followed by a residual channel MLP. The
token mixer here is a depthwise 7x7 convolution (the ConvFormer mixer of Yu et al.,
"MetaFormer Baselines for Vision", TPAMI 2024); the paper finds such blocks fix the MLIC
series' loss at high rates. Downsampling and upsampling are strided and sub-pixel
convolutions between stages; the hyper transforms, gains and hyper-latent prior are the shared
ones of :mod:`codec.context.transforms`.

Two sizes:

* ``LITE``: N=64, M=128 (the shipped hyperprior's latent, so stage 1 trains the entropy
  model on its latents and stage 2 distils these transforms from it);
* ``PAPER``: N=192, M=320, 10 slices, as in the paper; defined and tested here (one
  forward and backward pass), trained only where a GPU is available.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..context import transforms as shared
from ..context.transforms import ContextTransforms, count_macs, down, up
from .entropy_model import EntropyModelConfig, MultiReferenceEntropyModel

__all__ = ["LITE", "PAPER", "MLICv2Config", "TokenMixingTransforms", "complexity", "count_macs"]


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


class TokenMixingTransforms(ContextTransforms):
    """Token-mixing analysis and synthesis with the shared hyper transforms and gains."""

    def __init__(self, cfg: MLICv2Config = LITE):
        N, M, k = cfg.N, cfg.M, cfg.blocks

        def blocks(c: int) -> list[nn.Module]:
            return [TokenMixingBlock(c) for _ in range(k)]

        g_a = nn.Sequential(down(3, N), *blocks(N), down(N, N), *blocks(N), down(N, N), *blocks(N), down(N, M))
        g_s = nn.Sequential(up(M, N), *blocks(N), up(N, N), *blocks(N), up(N, N), *blocks(N), up(N, 3))
        super().__init__(N, M, cfg.lambdas, g_a, g_s)
        self.config = cfg


def complexity(cfg: MLICv2Config, height: int = 256, width: int = 256) -> dict[str, float]:
    """Parameters and kMAC per pixel of a full model of size ``cfg``."""
    torch.manual_seed(0)
    return shared.complexity(TokenMixingTransforms(cfg), MultiReferenceEntropyModel(cfg.entropy), height, width)
