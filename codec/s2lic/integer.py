"""S2LIC's ACGC entropy model in integers: the coding twin of
:class:`~codec.s2lic.entropy_model.ACGCEntropyModel`.

Number system and loop as in :mod:`codec.context.integer` and :mod:`codec.context.tiles`
(activations in units of ``2^-12``). The two attention contexts in integers:

* channel-wise attention: queries and keys clipped to ``±bound``, the ``Q K^T`` products
  summed in int64 (at most ``N * 2^32``), floor-divided by ``N`` and shifted back to
  ``2^-12``; the softmax from the shared exp table; ``A V`` in int64;
* deformable sampling: a sample position is ``(row << 12) + dy`` (offsets clipped to
  ``±reach``); its integer part is an arithmetic shift, its fraction the low 12 bits; the
  four bilinear weights are products of fractions (units ``2^-24``), zero outside the latent;
  the weighted sum is floored back to ``2^-12``; the softmax over the points weighs the
  samples (units ``2^-16``).
"""

from __future__ import annotations

import numpy as np

from ..context.integer import (A_FRAC, CLIP, EXP_FRAC, checkerboard_conv, conv_spec, conv_stack, softmax,
                               stack)
from ..context.tiles import IntegerSlicedModel, IntegerSliceHeads, SlicedTile, Weights, has_module
from .entropy_model import ACGCConfig

FRACTION_MASK = (1 << A_FRAC) - 1


class IntegerChannelAttention:
    """:class:`~codec.s2lic.entropy_model.ChannelAttention` in integers."""

    def __init__(self, w: Weights, p: str, heads: int, bound: float):
        self.proj = conv_stack(w, [(f"{p}.proj", True)], p)
        self.q = conv_stack(w, [(f"{p}.q", False)], p)
        self.k = conv_stack(w, [(f"{p}.k", False)], p)
        self.v = conv_stack(w, [(f"{p}.v", False)], p)
        self.out = conv_stack(w, [(f"{p}.out", True)], p)
        self.heads = heads
        self.bound = int(round(bound * (1 << A_FRAC)))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        h, w, _ = x.shape
        n = h * w
        f = self.proj(x)
        q = np.clip(self.q(f), -self.bound, self.bound).reshape(n, -1).astype(np.int64)
        k = np.clip(self.k(f), -self.bound, self.bound).reshape(n, -1).astype(np.int64)
        v = self.v(f).reshape(n, -1).astype(np.int64)
        dh = q.shape[1] // self.heads
        out = np.empty_like(v)
        for g in range(self.heads):
            sl = slice(g * dh, (g + 1) * dh)
            logits = np.floor_divide(q[:, sl].T @ k[:, sl], n) >> A_FRAC  # (dh, dh), units 2^-12
            attn = softmax(logits, axis=1)  # units 2^-16
            out[:, sl] = (v[:, sl] @ attn.T) >> EXP_FRAC
        return self.out(np.clip(out, *CLIP).reshape(h, w, -1).astype(np.float64))


def bilinear_sample(value: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """``value`` (h, w, D) fixed point sampled at each position plus the fixed-point offsets
    ``dy``/``dx`` (h, w, P): int64 (h, w, P, D) in the units of ``value``."""
    h, w, D = value.shape
    flat = value.reshape(h * w, D).astype(np.int64)
    py = (np.arange(h, dtype=np.int64)[:, None, None] << A_FRAC) + dy.astype(np.int64)
    px = (np.arange(w, dtype=np.int64)[None, :, None] << A_FRAC) + dx.astype(np.int64)
    y0, x0 = py >> A_FRAC, px >> A_FRAC
    fy, fx = py & FRACTION_MASK, px & FRACTION_MASK
    one = np.int64(1 << A_FRAC)
    total = np.zeros(dy.shape + (D,), dtype=np.int64)
    for oy, ox, weight in ((0, 0, (one - fy) * (one - fx)), (0, 1, (one - fy) * fx), (1, 0, fy * (one - fx)),
                           (1, 1, fy * fx)):
        yy, xx = y0 + oy, x0 + ox
        valid = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        idx = np.clip(yy, 0, h - 1) * w + np.clip(xx, 0, w - 1)
        total += flat[idx] * np.where(valid, weight, 0)[..., None]
    return total >> (2 * A_FRAC)


class IntegerDeformableAttention:
    """:class:`~codec.s2lic.entropy_model.DeformableInterAttention` in integers."""

    def __init__(self, w: Weights, p: str, points: int, reach: float):
        self.value = conv_stack(w, [(f"{p}.value", False)], p)
        self.sampling = stack([conv_spec(w, f"{p}.sampling", False)], p)
        self.out = conv_stack(w, [(f"{p}.out", True)], p)
        self.points = points
        self.reach = int(round(reach * (1 << A_FRAC)))

    def __call__(self, guide: np.ndarray, value: np.ndarray) -> np.ndarray:
        P = self.points
        s = self.sampling(guide).astype(np.int64)
        dy = np.clip(s[:, :, :P], -self.reach, self.reach)
        dx = np.clip(s[:, :, P:2 * P], -self.reach, self.reach)
        weights = softmax(s[:, :, 2 * P:], axis=2)  # (h, w, P), units 2^-16
        samples = bilinear_sample(self.value(value), dy, dx)  # (h, w, P, D), units 2^-12
        mixed = (samples * weights[..., None]).sum(2) >> EXP_FRAC
        return self.out(np.clip(mixed, *CLIP).astype(np.float64))


class _Slice(IntegerSliceHeads):
    def __init__(self, w: Weights, p: str, cfg: ACGCConfig):
        super().__init__(w, p)
        self.channel = IntegerChannelAttention(w, f"{p}.channel", cfg.channel_heads, cfg.attention_bound) \
            if has_module(w, f"{p}.channel") else None
        self.inter = IntegerDeformableAttention(w, f"{p}.inter", cfg.points, cfg.reach) \
            if has_module(w, f"{p}.inter") else None
        self.local = checkerboard_conv(w, f"{p}.local.0") if has_module(w, f"{p}.local") else None


class ACGCTile(SlicedTile):
    """One tile's latent under S2LIC's contexts."""

    def anchor_features(self, index: int) -> list[np.ndarray]:
        s: _Slice = self.net.slices[index]
        feats = []
        if s.channel is not None or s.inter is not None:
            prev = np.concatenate(self.decoded, axis=2)
            if s.channel is not None:
                feats.append(s.channel(prev))
            if s.inter is not None:
                feats.append(s.inter(np.concatenate([self.embed, self.decoded[-1]], axis=2), prev))
        return feats

    def non_anchor_features(self, index: int, anchors_u: np.ndarray) -> list[np.ndarray]:
        s: _Slice = self.net.slices[index]
        return [s.local(anchors_u)] if s.local is not None else []


class IntegerACGC(IntegerSlicedModel):
    """Built once from the float16 weights (``prefix.*`` keys of a state dict, as numpy)."""

    tile_class = ACGCTile

    def __init__(self, weights: Weights, cfg: ACGCConfig, prefix: str = "em"):
        super().__init__(weights, cfg, prefix)
        self.slices = [_Slice(weights, f"{prefix}.slices.{i}", cfg) for i in range(cfg.slices)]
