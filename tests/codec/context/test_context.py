"""The shared context package: checkerboard, integer twins against float64 references, the
staged coding loop."""

import math

import numpy as np
import pytest
import torch

from codec.context import coding as staged
from codec.context.checkerboard import ANCHOR, NON_ANCHOR, anchors, neighbour_mask, pass_mask
from codec.context.integer import (A_FRAC, EXP_TABLE, IntegerAttention, IntegerHead, IntegerReweight,
                                   checkerboard_conv, hard_sigmoid, hard_tanh_half, softmax)
from codec.context.modules import ChannelReweight, CheckerboardConv, LinearAttention, ParameterHead
from codec.errors import CodecError
from entropy import gaussian_tables

ONE = 1 << A_FRAC


def _fixed(x: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) float -> (H, W, C) fixed-point integers."""
    return np.round(x[0].permute(1, 2, 0).double().numpy() * ONE)


def _state(module: torch.nn.Module, prefix: str) -> dict[str, np.ndarray]:
    # the integer twins are built from float16 weights; round the float module the same way
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.half().float())
    return {f"{prefix}.{k}": v.numpy().astype(np.float64) for k, v in module.state_dict().items()}


def test_checkerboard_passes_partition_the_latent():
    a = anchors(5, 7)
    assert a[0, 0] and not a[0, 1] and not a[1, 0] and a[1, 1]
    assert np.array_equal(pass_mask(5, 7, ANCHOR) ^ pass_mask(5, 7, NON_ANCHOR), np.ones((5, 7), bool))
    m = neighbour_mask(5)
    assert m[2, 1] and m[1, 2] and not m[2, 2] and not m[1, 1] and m.sum() == 12


def test_exp_table_matches_float64_exp():
    j = np.arange(EXP_TABLE.size)
    ref = np.exp(-j / 256.0) * 2**16
    assert EXP_TABLE[0] == 1 << 16
    assert np.abs(EXP_TABLE - ref).max() <= 0.5 + 1e-9
    assert np.all(np.diff(EXP_TABLE) <= 0)


def test_integer_elementwise_functions_are_exact():
    x = np.arange(-5 * ONE, 5 * ONE, 37, dtype=np.float64)
    hs = np.clip(np.floor(x / 6) + ONE // 2, 0, ONE)
    assert np.array_equal(hard_sigmoid(x), hs)
    assert np.array_equal(hard_tanh_half(x), np.floor(np.clip(x, -ONE, ONE) / 2))


def test_integer_softmax_is_close_to_float64_softmax():
    rng = np.random.default_rng(0)
    x = np.round(rng.normal(0, 3, (50, 16)) * ONE)
    p = softmax(x, axis=1) / 2**16
    ref = np.exp(x / ONE - (x / ONE).max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    assert np.abs(p - ref).max() < 5e-3
    mask = rng.random((50, 1)) < 0.5
    pm = softmax(x, axis=0, mask=mask) / 2**16
    assert np.all(pm[~mask[:, 0]] == 0)
    assert np.allclose(pm.sum(0), 1.0, atol=1e-3)


@pytest.fixture
def seeded():
    torch.manual_seed(3)


def test_integer_attention_matches_float_attention(seeded):
    att = LinearAttention(12, 8, 16, 16).eval()
    w = _state(att, "a")
    guide, value = torch.randn(1, 12, 9, 11), torch.randn(1, 8, 9, 11)
    key_mask = torch.from_numpy(anchors(9, 11))
    with torch.no_grad():
        ref = att(_q(guide), _q(value), key_mask=key_mask)
    out = IntegerAttention(w, "a")(_fixed(_q(guide)), _fixed(_q(value)), key_mask=anchors(9, 11))
    err = np.abs(out / ONE - ref[0].permute(1, 2, 0).numpy())
    assert err.max() < 0.02 * max(1.0, float(ref.abs().max()))


def _q(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x * ONE) / ONE


def test_integer_reweight_head_and_checkerboard_conv_match_float(seeded):
    rw = ChannelReweight(24, 8).eval()
    head = ParameterHead(24, 10, 32, 4).eval()
    torch.nn.init.normal_(head.layers[2].weight, 0, 0.1)
    torch.nn.init.normal_(head.quality_bias, 0, 0.5)
    cb = torch.nn.Sequential(CheckerboardConv(24, 16, 5), torch.nn.LeakyReLU(41 / 4096)).eval()
    x = _q(torch.randn(1, 24, 8, 10))
    xi = _fixed(x)
    q = torch.tensor([2])
    with torch.no_grad():
        refs = [rw(x), head(x, q), cb(x)]
    outs = [IntegerReweight(_state(rw, "r"), "r")(xi), IntegerHead(_state(head, "h"), "h")(xi, 2),
            checkerboard_conv(_state(cb[0], "c"), "c")(xi)]
    for ref, out in zip(refs, outs):
        r = ref[0].permute(1, 2, 0).numpy()
        assert out.shape == r.shape
        assert np.abs(out / ONE - r).max() < 0.01 * max(1.0, float(np.abs(r).max()))


class _FixedModel:
    """A staged model whose parameters do not depend on the decoded values, except that the
    non-anchor means are the anchors' symbols (so a decoding error would show)."""

    slices, slice_channels, height, width = 3, 2, 5, 4

    def __init__(self):
        self.accepted = []
        self.last = None

    def parameters(self, index, which):
        mu = np.zeros((5, 4, 2), np.float32) if which == ANCHOR else self.last.astype(np.float32) * 0.5
        return mu, np.full((5, 4, 2), 3 + index, np.uint8)

    def accept(self, index, which, symbols, means):
        m = pass_mask(5, 4, which)[:, :, None]
        self.accepted.append(np.where(m, symbols, 0))
        if which == ANCHOR:
            self.last = np.where(m, symbols, 0)


def test_staged_loop_round_trips_and_refuses_garbage():
    tables = gaussian_tables(np.array([0.5, 1.0, 2.0, 4.0, 8.0, 16.0]))
    rng = np.random.default_rng(1)
    latent = rng.normal(0, 6, (5, 4, 6)).astype(np.float32)
    enc = _FixedModel()
    data = staged.encode(enc, latent, tables)
    dec = _FixedModel()
    staged.decode(dec, data, tables)
    assert len(dec.accepted) == 6 and all(np.array_equal(a, b) for a, b in zip(enc.accepted, dec.accepted))
    with pytest.raises(CodecError):
        staged.decode(_FixedModel(), data + b"\1\2\3\4", tables)
    with pytest.raises(CodecError):
        staged.encode(_FixedModel(), np.full((5, 4, 6), math.inf, np.float32), tables)
