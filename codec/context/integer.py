"""Integer twins of :mod:`codec.context.modules`: context networks that give the same
integers on every machine, so encoder and decoder always choose the same tables.

Number system (as in :mod:`codec.hyperprior.integer`, after Cool-chic's fixed-point entropy
model): activations are integers in units of ``2^-A_FRAC``, weights ``round(w * 2^W_FRAC)``
taken exactly from the stored float16 weights; every activation is clipped to
``±ACTIVATION_LIMIT``. Convolutions and linear layers are :mod:`codec.fixedpoint` layers (exact
float64 products of bounded integers). The other operations are integer arithmetic:

* LeakyReLU: ``floor(x * 41 / 4096)`` for negative ``x``;
* hard sigmoid: ``clip(floor(x / 6) + 2^(A_FRAC-1), 0, 2^A_FRAC)``;
* mean over positions: ``floor(sum / count)``;
* softmax: ``exp(-(max - x))`` from :data:`EXP_TABLE` (``2^-8`` steps over ``[0, 16)``, values in
  units of ``2^-EXP_FRAC``, computed with Python's ``decimal`` module, which is the same
  software arithmetic on every machine), normalised by integer division;
* attention products: int64 matrix products (exact; the bounds are far below 2^63).

Arrays are channels-last, ``(H, W, C)``, as :mod:`codec.fixedpoint` takes them.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping

import numpy as np

from .. import fixedpoint
from ..fixedpoint import Conv2d, FixedPointStack, LeakyReLU, Linear
from .checkerboard import neighbour_mask
from .modules import LEAK_NUMERATOR, LEAK_SHIFT

W_FRAC = 14
A_FRAC = 12
ONE = 1 << A_FRAC
ACTIVATION_LIMIT = 1 << 24
CLIP = (-ACTIVATION_LIMIT, ACTIVATION_LIMIT)
LEAK = LeakyReLU(LEAK_NUMERATOR, LEAK_SHIFT)
EXP_FRAC = 16
EXP_STEP_SHIFT = 4  # table index = (max - x) >> 4: steps of 2^-8 in units of 2^-A_FRAC
EXP_SIZE = 16 << (A_FRAC - EXP_STEP_SHIFT)  # covers [0, 16)


def _exp_table() -> np.ndarray:
    ctx = decimal.Context(prec=40)
    step = decimal.Decimal(1) / decimal.Decimal(1 << (A_FRAC - EXP_STEP_SHIFT))
    scale = decimal.Decimal(1 << EXP_FRAC)
    out = [int((ctx.exp(-step * j) * scale).to_integral_value(rounding=decimal.ROUND_HALF_EVEN))
           for j in range(EXP_SIZE)]
    return np.array(out, dtype=np.int64)


#: ``round(2^16 * exp(-j / 256))`` for ``j`` in ``0 .. 4095``
EXP_TABLE = _exp_table()

Weights = Mapping[str, np.ndarray]


def fixed_weight(w: np.ndarray) -> np.ndarray:
    return fixedpoint.to_fixed(w, W_FRAC)


def fixed_bias(b: np.ndarray) -> np.ndarray:
    return fixedpoint.to_fixed(b, A_FRAC + W_FRAC)


def conv_spec(weights: Weights, prefix: str, leaky: bool, mask: np.ndarray | None = None,
              extra_bias: np.ndarray | None = None) -> Conv2d:
    """The fixed-point convolution of the torch layer ``prefix`` (``prefix.weight``/``.bias``)."""
    w = weights[f"{prefix}.weight"]
    b = fixed_bias(weights[f"{prefix}.bias"])
    if extra_bias is not None:
        b = b + fixed_bias(extra_bias)
    return Conv2d(weight=fixed_weight(w), bias=b, padding=w.shape[-1] // 2, mask=mask, shift=W_FRAC,
                  rounding="half_up", activation=LEAK if leaky else None, clip=CLIP)


def linear_spec(weights: Weights, prefix: str, leaky: bool) -> Linear:
    return Linear(weight=fixed_weight(weights[f"{prefix}.weight"]), bias=fixed_bias(weights[f"{prefix}.bias"]),
                  shift=W_FRAC, rounding="half_up", activation=LEAK if leaky else None, clip=CLIP)


def stack(specs: list, what: str) -> FixedPointStack:
    try:
        return FixedPointStack(specs, ACTIVATION_LIMIT)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


def conv_stack(weights: Weights, prefixes: list[tuple[str, bool]], what: str) -> FixedPointStack:
    """Convolutions ``prefixes`` = [(name, leaky after it), ...] applied in order."""
    return stack([conv_spec(weights, p, leaky) for p, leaky in prefixes], what)


def hard_sigmoid(x: np.ndarray) -> np.ndarray:
    """``clip(x/6 + 1/2, 0, 1)`` of fixed-point ``x``, exactly, in the same units."""
    return np.clip(np.floor_divide(x.astype(np.int64), 6) + ONE // 2, 0, ONE)


def hard_tanh_half(x: np.ndarray) -> np.ndarray:
    """``0.5 * clip(x, -1, 1)`` of fixed-point ``x`` (floor), in the same units."""
    return np.floor_divide(np.clip(x.astype(np.int64), -ONE, ONE), 2)


def softmax(x: np.ndarray, axis: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Integer softmax of fixed-point ``x`` along ``axis``: int64 in units of ``2^-EXP_FRAC``
    (each slice sums to at most ``2^EXP_FRAC``). ``mask`` (broadcastable, True = kept): the
    other entries get zero weight."""
    x = x.astype(np.int64)
    if mask is not None:
        low = np.int64(-(1 << 40))
        x = np.where(mask, x, low)
    top = x.max(axis=axis, keepdims=True)
    idx = np.minimum((top - x) >> EXP_STEP_SHIFT, EXP_SIZE - 1)
    e = EXP_TABLE[idx]
    if mask is not None:
        e = np.where(mask, e, 0)
    total = e.sum(axis=axis, keepdims=True)
    return (e << EXP_FRAC) // np.maximum(total, 1)


class IntegerReweight:
    """:class:`~codec.context.modules.ChannelReweight` in integers."""

    def __init__(self, weights: Weights, prefix: str):
        self.mlp = stack([linear_spec(weights, f"{prefix}.fc1", True), linear_spec(weights, f"{prefix}.fc2", False)],
                         prefix)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        h, w, _ = x.shape
        xi = x.astype(np.int64)
        mean = np.floor_divide(xi.reshape(h * w, -1).sum(0), h * w)
        gate = hard_sigmoid(self.mlp(mean.astype(np.float64)))
        return ((xi * gate[None, None, :]) >> A_FRAC).astype(np.float64)


class IntegerAttention:
    """:class:`~codec.context.modules.LinearAttention` in integers."""

    def __init__(self, weights: Weights, prefix: str):
        self.position = stack([conv_spec(weights, f"{prefix}.position", False)], prefix)
        self.qk = stack([Conv2d(weight=np.concatenate([fixed_weight(weights[f"{prefix}.q.weight"]),
                                                       fixed_weight(weights[f"{prefix}.k.weight"])]),
                                bias=np.concatenate([fixed_bias(weights[f"{prefix}.q.bias"]),
                                                     fixed_bias(weights[f"{prefix}.k.bias"])]),
                                shift=W_FRAC, rounding="half_up", clip=CLIP)], prefix)
        self.v = stack([conv_spec(weights, f"{prefix}.v", False)], prefix)
        self.dk = weights[f"{prefix}.q.weight"].shape[0]

    def __call__(self, guide: np.ndarray, value: np.ndarray, key_mask: np.ndarray | None = None) -> np.ndarray:
        h, w, _ = guide.shape
        g = np.clip(guide + self.position(guide), *CLIP)
        qk = self.qk(g).reshape(h * w, 2 * self.dk)
        q = softmax(qk[:, :self.dk], axis=1)
        mask = None if key_mask is None else key_mask.reshape(h * w, 1)
        k = softmax(qk[:, self.dk:], axis=0, mask=mask)
        v = self.v(value).reshape(h * w, -1).astype(np.int64)
        context = (k.T @ v) >> EXP_FRAC  # (dk, dv), units 2^-A_FRAC
        out = (q @ context) >> EXP_FRAC  # (n, dv)
        return np.clip(out, *CLIP).reshape(h, w, -1).astype(np.float64)


class IntegerHead:
    """:class:`~codec.context.modules.ParameterHead` in integers, one stack per quality (the
    quality's bias folds into the first layer's)."""

    def __init__(self, weights: Weights, prefix: str):
        self.weights = weights
        self.prefix = prefix
        self._stacks: dict[int, FixedPointStack] = {}

    def __call__(self, x: np.ndarray, quality_index: int) -> np.ndarray:
        s = self._stacks.get(quality_index)
        if s is None:
            p = self.prefix
            qb = self.weights[f"{p}.quality_bias"][quality_index]
            s = stack([conv_spec(self.weights, f"{p}.layers.0", True, extra_bias=qb),
                       conv_spec(self.weights, f"{p}.layers.1", True),
                       conv_spec(self.weights, f"{p}.layers.2", False)], p)
            self._stacks[quality_index] = s
        return s(x)


def checkerboard_conv(weights: Weights, prefix: str) -> FixedPointStack:
    """:class:`~codec.context.modules.CheckerboardConv` + LeakyReLU, only the anchor taps."""
    k = weights[f"{prefix}.weight"].shape[-1]
    return stack([conv_spec(weights, prefix, True, mask=neighbour_mask(k))], prefix)
