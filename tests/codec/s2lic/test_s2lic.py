"""S2LIC: its integer attention contexts against the float ones and float64 references, the
SwinV2 transforms at both sizes. What every sliced context codec must do (exact decoding,
ablations, refinement) is tested for S2LIC in tests/codec/context/test_context_codec.py."""

import numpy as np
import pytest
import torch

from codec.context.integer import A_FRAC
from codec.s2lic.entropy_model import ChannelAttention, DeformableInterAttention, bilinear_sample
from codec.s2lic.integer import IntegerChannelAttention, IntegerDeformableAttention
from codec.s2lic.integer import bilinear_sample as integer_bilinear_sample
from codec.s2lic.transforms import LITE, PAPER, SwinV2Block, SwinV2Transforms, complexity, shift_mask

ONE = 1 << A_FRAC


def _fixed(x: torch.Tensor) -> np.ndarray:
    return np.round(x[0].permute(1, 2, 0).double().numpy() * ONE)


def _q(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x * ONE) / ONE


def _state(module: torch.nn.Module, prefix: str) -> dict[str, np.ndarray]:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.half().float())
    return {f"{prefix}.{k}": v.numpy().astype(np.float64) for k, v in module.state_dict().items()}


@pytest.fixture
def seeded():
    torch.manual_seed(3)


@pytest.mark.parametrize("h,w", [(6, 9), (1, 7), (5, 1)])
def test_bilinear_sampling_matches_a_float64_reference(seeded, h, w):
    """Integer and float bilinear sampling (zeros outside) against a direct float64 evaluation."""
    D, P = 3, 5
    value = torch.randn(1, D, h, w)
    dy, dx = torch.rand(1, P, h, w) * 14 - 7, torch.rand(1, P, h, w) * 14 - 7
    vq, dyq, dxq = _q(value), _q(dy), _q(dx)
    ref = np.zeros((h, w, P, D))
    v = vq[0].double().numpy()
    for r in range(h):
        for c in range(w):
            for p in range(P):
                y, x = r + float(dyq[0, p, r, c]), c + float(dxq[0, p, r, c])
                y0, x0 = int(np.floor(y)), int(np.floor(x))
                for yy, xx in ((y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1)):
                    if 0 <= yy < h and 0 <= xx < w:
                        ref[r, c, p] += (1 - abs(y - yy)) * (1 - abs(x - xx)) * v[:, yy, xx]
    out = integer_bilinear_sample(_fixed(vq), _fixed(dyq), _fixed(dxq)) / ONE
    assert np.abs(out - ref).max() < 4.0 / ONE
    torch_out = bilinear_sample(vq.double(), dyq.double(), dxq.double())[0].permute(2, 3, 0, 1).numpy()
    assert np.abs(torch_out - ref).max() < 1e-9


def test_integer_channel_attention_matches_float(seeded):
    att = ChannelAttention(24, 16, 2, 16.0).eval()
    w = _state(att, "c")
    x = _q(torch.randn(1, 24, 9, 11))
    with torch.no_grad():
        ref = att(x)[0].permute(1, 2, 0).numpy()
    out = IntegerChannelAttention(w, "c", 2, 16.0)(_fixed(x)) / ONE
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() < 0.02 * max(1.0, float(np.abs(ref).max()))


def test_integer_deformable_attention_matches_float(seeded):
    att = DeformableInterAttention(20, 24, 8, 6, 8.0).eval()
    torch.nn.init.normal_(att.sampling.weight, 0.0, 0.05)
    w = _state(att, "d")
    guide, value = _q(torch.randn(1, 20, 10, 12)), _q(torch.randn(1, 24, 10, 12))
    with torch.no_grad():
        ref = att(guide, value)[0].permute(1, 2, 0).numpy()
    out = IntegerDeformableAttention(w, "d", 6, 8.0)(_fixed(guide), _fixed(value)) / ONE
    assert np.abs(out - ref).max() < 0.02 * max(1.0, float(np.abs(ref).max()))


def test_shifted_windows_mask_wrapped_borders_only():
    mask = shift_mask(16, 16, 8, 4)
    assert mask.shape == (4, 64, 64)
    assert (mask[0] == 0).all()  # the top-left window holds one region
    assert (mask[3] < 0).any() and (mask.diagonal(dim1=1, dim2=2) == 0).all()


def test_swinv2_block_works_at_any_size_and_keeps_shape(seeded):
    block = SwinV2Block(16, 4, 8, shifted=True)
    for h, w in ((5, 7), (16, 24), (13, 9)):
        x = torch.randn(2, 16, h, w)
        assert block(x).shape == x.shape


@pytest.mark.parametrize("cfg", [LITE, PAPER], ids=["lite", "paper"])
def test_both_sizes_forward_and_backward(cfg):
    """One training step's forward and backward pass of the full model (SwinV2 transforms and
    the ACGC entropy model) on a crop whose latent is not a multiple of the window."""
    from codec.s2lic.entropy_model import ACGCEntropyModel

    torch.manual_seed(0)
    model = SwinV2Transforms(cfg)
    em = ACGCEntropyModel(cfg.entropy)
    x = torch.rand(1, 3, 128, 192)
    out = model(x, torch.tensor([1]), em)
    (out["bpp"].mean() + 0.01 * ((out["x_hat"] - x) ** 2).mean()).backward()
    assert out["x_hat"].shape == x.shape
    assert all(p.grad is not None for n, p in model.named_parameters() if "quantiles" not in n)
    counts = complexity(cfg, 64, 64)
    assert counts["decode_kmac_per_pixel"] < counts["kmac_per_pixel"]
    if cfg is PAPER:
        assert counts["parameters"] > 30_000_000
