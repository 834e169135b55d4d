"""MLICv2: the paper size with token-mixing transforms. What every sliced context codec must do
(exact decoding, integer against float, ablations, refinement) is tested for MLICv2 in
tests/codec/context/test_context_codec.py."""

import torch

from codec.mlicv2.entropy_model import MultiReferenceEntropyModel
from codec.mlicv2.transforms import PAPER, TokenMixingTransforms, complexity


def test_paper_size_forward_and_backward():
    """The paper's size (N=192, M=320, 10 slices) with token-mixing transforms: one training
    step's forward and backward pass on a small crop."""
    model = TokenMixingTransforms(PAPER)
    em = MultiReferenceEntropyModel(PAPER.entropy)
    x = torch.rand(1, 3, 64, 64)
    q = torch.tensor([0])
    out = model(x, q, em)
    loss = out["bpp"].mean() + 0.01 * ((out["x_hat"] - x) ** 2).mean()
    loss.backward()
    assert out["x_hat"].shape == x.shape
    assert all(p.grad is not None for p in em.parameters() if p.requires_grad)
    counts = complexity(PAPER, 64, 64)
    assert counts["parameters"] > 10_000_000 and counts["kmac_per_pixel"] > 100
