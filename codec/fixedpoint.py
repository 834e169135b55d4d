"""Fixed-point network layers: integer results that repeat bit for bit on every machine.

An entropy decoder must pick exactly the table the encoder picked, so whatever computes the
entropy parameters has to give the same numbers on every CPU, BLAS and thread count. Float
sums do not: their rounding depends on the order of the additions, which the hardware, the
BLAS kernel and the thread split choose. Cool-chic runs its entropy model in fixed point for
this reason (Ladune et al., "COOL-CHIC: Coordinate-based Low Complexity Hierarchical Image
Codec", ICCV 2023); this module does the same for every lcodec network that chooses tables:
the hyperprior's hyper-synthesis (:mod:`codec.hyperprior.integer`), the overfitted codec's
ARM (:class:`codec.overfit.runtime.FixedPointArm`), and the parameter networks of
channel-context and checkerboard models (1x1/3x3/5x5 and masked convolutions, linear layers).

The number system
-----------------
Weights and biases are integers (a float weight ``w`` becomes ``round(w * 2^f)``, see
:func:`to_fixed`); activations are integers in units of ``2^-a``. A layer computes, per output,

1. ``s = sum(w * x)`` over its taps (convolution, transposed convolution or matrix product);
2. the requantisation back to activation units: ``s + bias`` (bias in the units of ``s``) or,
   with ``bias_after_shift``, ``bias`` added after the shift (bias in output units); the
   shift is ``floor(s / 2^shift)`` (``rounding="floor"``) or ``floor((s + 2^(shift-1)) / 2^shift)``
   (``"half_up"``);
3. an activation: ReLU, or a LeakyReLU whose negative values become
   ``floor(y * slope / 2^slope_shift)`` with an integer slope;
4. clipping to ``[lo, hi]``.

Why float64 products of bounded integers are exact
--------------------------------------------------
The layers run as float64 numpy/BLAS matrix products, for speed, yet give exact integers.
Every integer of magnitude at most 2^53 is a float64, and IEEE 754 defines ``+``, ``-``, ``*``
and fused multiply-add as the exact result rounded to a float64: when the exact result is an
integer below 2^53 in magnitude it is representable, so the rounding leaves it unchanged. In a
layer every product ``w * x`` and every partial sum, in any order and grouping (sequential,
pairwise, blocked into SIMD lanes, split across threads, fused into FMAs), is a sum of a subset
of the terms, so its magnitude is at most ``X * sum|w| + |bias| + 2^(shift-1)``, with ``X``
the largest input magnitude. When that worst case is below 2^53 no operation ever rounds and
the result is the mathematical integer, whatever the machine does. Multiplying by ``2^-shift``
only changes the exponent, and ``floor`` is exact, so the shift is exact as well.

Each layer checks this worst case when it is built, from its actual integer weights and the
range of its inputs (the declared input range for the first layer; then the previous layer's
clip or, without one, its own worst-case output), and raises :class:`ValueError` if any sum,
bias addition or LeakyReLU product could reach 2^53. At run time a stack clips its input to the
declared range, so no input can break the bound. The one assumption is that the BLAS computes
the classical sum of products (every mainstream BLAS does for ``gemm``; Strassen-like schemes,
which add weights before multiplying, would need a larger margin).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

#: every integer below this magnitude is an exact float64, and so is every sum of them below it
EXACT_LIMIT = 1 << 53

Rounding = Literal["floor", "half_up"]


def to_fixed(values: np.ndarray, frac: int, limit: int | None = None) -> np.ndarray:
    """Float values -> float64 integers ``round(v * 2^frac)`` (half to even), optionally
    clipped to ``±limit``. Exact for float16/32/64 inputs: scaling by a power of two is."""
    out = np.round(np.asarray(values, dtype=np.float64) * 2.0**frac)
    return out if limit is None else np.clip(out, -limit, limit)


def shift_round(x: np.ndarray, shift: int, rounding: Rounding = "floor") -> np.ndarray:
    """``floor(x / 2^shift)`` or ``floor((x + 2^(shift-1)) / 2^shift)`` of integer-valued
    float64 ``x`` (|x| + 2^(shift-1) < 2^53), as a new array."""
    if shift < 0:
        raise ValueError("shift must be non-negative")
    out = np.array(x, dtype=np.float64)
    if shift:
        if rounding == "half_up":
            out += 2.0 ** (shift - 1)
        out *= 2.0**-shift
        np.floor(out, out=out)
    return out


# -- layer specifications --------------------------------------------------------------------
@dataclass(frozen=True)
class ReLU:
    """``max(y, 0)``."""


@dataclass(frozen=True)
class LeakyReLU:
    """Negative ``y`` become ``floor(y * slope / 2^shift)``; e.g. slope 41, shift 12 is 0.01."""

    slope: int
    shift: int


Activation = ReLU | LeakyReLU | None


@dataclass(frozen=True, kw_only=True, eq=False)
class _Spec:
    """What every layer does after its sums (see the module docstring)."""

    bias: np.ndarray | None = None
    #: False: the bias is in the units of the sums and added before the shift; True: in output
    #: units, added after it
    bias_after_shift: bool = False
    shift: int = 0
    rounding: Rounding = "floor"
    activation: Activation = None
    clip: tuple[int, int] | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class Conv2d(_Spec):
    """A convolution; ``weight`` integers in torch's layout (out, in, kh, kw).

    ``mask`` (kh, kw) booleans keeps only the taps where it is True (the masked convolutions of
    autoregressive and checkerboard context models); the others are not computed at all.
    """

    weight: np.ndarray
    stride: int | tuple[int, int] = 1
    padding: int | tuple[int, int] = 0
    mask: np.ndarray | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class ConvTranspose2d(_Spec):
    """A transposed convolution; ``weight`` integers in torch's layout (in, out, kh, kw).
    Output size ``(H - 1) * stride - 2 * padding + kh + output_padding``, as in torch."""

    weight: np.ndarray
    stride: int | tuple[int, int] = 1
    padding: int | tuple[int, int] = 0
    output_padding: int | tuple[int, int] = 0


@dataclass(frozen=True, kw_only=True, eq=False)
class Linear(_Spec):
    """A matrix product over the last axis; ``weight`` integers (out, in), torch's layout."""

    weight: np.ndarray


LayerSpec = Conv2d | ConvTranspose2d | Linear


# -- built layers ----------------------------------------------------------------------------
def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    a, b = (v, v) if isinstance(v, (int, np.integer)) else v
    return int(a), int(b)


def _integers(a: np.ndarray | None, what: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    if a is None:
        return np.zeros(shape if shape is not None else (0,), dtype=np.float64)
    out = np.asarray(a, dtype=np.float64)
    if shape is not None and out.shape != shape:
        raise ValueError(f"{what} has shape {out.shape}, expected {shape}")
    if not np.all(np.isfinite(out)) or not np.array_equal(out, np.floor(out)):
        raise ValueError(f"{what} must be integers")
    if out.size and float(np.abs(out).max()) >= EXACT_LIMIT:
        raise ValueError(f"{what} exceed exact float64 integers")
    return out


def _exact_int(v: float) -> int:
    """A non-negative float64 bound as a Python int (rounding up); above 2^53 it no longer
    matters how precisely: the layer is refused either way."""
    return int(np.ceil(v))


class Layer:
    """One built layer: integer weights as a float64 matrix, the exactness proof done.

    ``layer(x)`` maps integer-valued float64 activations whose magnitude is at most
    ``input_bound`` to the layer's integer outputs, within ``output_range``. ``products(x)``
    gives the raw sums before bias and requantisation.
    """

    weight: np.ndarray  # float64 integers, a matrix (layout depends on the layer type)
    bias: np.ndarray  # float64 integers (out,): units of the sums, or of the output if bias_after_shift

    def __init__(self, spec: LayerSpec, out_channels: int, reach: np.ndarray, input_bound: int):
        self.spec = spec
        self.out_channels = out_channels
        self.input_bound = int(input_bound)
        self.bias = _integers(spec.bias, "biases", (out_channels,))
        if spec.shift < 0:
            raise ValueError("shift must be non-negative")
        if spec.rounding not in ("floor", "half_up"):
            raise ValueError(f"unknown rounding {spec.rounding!r}")
        offset = 1 << (spec.shift - 1) if spec.rounding == "half_up" and spec.shift else 0
        # what is added to the sums before the shift (bias and rounding offset), as one array
        pre = (np.zeros(out_channels) if spec.bias_after_shift else self.bias.copy()) + offset
        self._pre = pre if np.any(pre) else None
        self._post = self.bias if spec.bias_after_shift and np.any(self.bias) else None
        self._scale = 2.0**-spec.shift if spec.shift else None

        # the worst case, in Python integers
        reach_max = _exact_int(float(reach.max())) if reach.size else 0
        bias_max = _exact_int(float(np.abs(self.bias).max())) if self.bias.size else 0
        pre_max = 0 if spec.bias_after_shift else bias_max
        self.sum_bound = self.input_bound * reach_max + pre_max + offset
        if self.sum_bound >= EXACT_LIMIT:
            raise ValueError(f"worst-case sum 2^{np.log2(float(self.sum_bound)):.2f} could exceed exact float64 "
                             f"integers (2^53)")
        y = -(-self.sum_bound // (1 << spec.shift))  # |floor(s / 2^shift)| <= ceil(bound / 2^shift)
        if spec.bias_after_shift:
            y += bias_max
            if y >= EXACT_LIMIT:
                raise ValueError("worst-case output plus bias could exceed exact float64 integers")
        lo, hi = -y, y
        act = spec.activation
        if isinstance(act, ReLU):
            lo = 0
        elif isinstance(act, LeakyReLU):
            if act.slope < 0 or act.shift < 0:
                raise ValueError("a LeakyReLU needs a non-negative slope and shift")
            if y * act.slope >= EXACT_LIMIT:
                raise ValueError("worst-case LeakyReLU product could exceed exact float64 integers")
            lo = -(y * act.slope) // (1 << act.shift)  # floor(-y * slope / 2^shift)
        elif act is not None:
            raise ValueError(f"unknown activation {act!r}")
        if spec.clip is not None:
            c_lo, c_hi = int(spec.clip[0]), int(spec.clip[1])
            if c_lo > c_hi or max(abs(c_lo), abs(c_hi)) >= EXACT_LIMIT:
                raise ValueError("clip range must be non-empty and within exact float64 integers")
            lo, hi = min(max(lo, c_lo), c_hi), max(min(hi, c_hi), c_lo)
        #: the outputs lie in this range (integers)
        self.output_range = (lo, hi)
        self.output_bound = max(abs(lo), abs(hi))

    in_channels: int

    def products(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _check_channels(self, c: int) -> None:
        if c != self.in_channels:
            raise ValueError(f"layer takes {self.in_channels} input channels, not {c}")

    def finish(self, s: np.ndarray) -> np.ndarray:
        """Sums (float64 integers, modified in place) -> the layer's outputs."""
        spec = self.spec
        if self._pre is not None:
            s += self._pre
        if self._scale is not None:
            s *= self._scale  # a power of two: exact, and the floor below is exact
            np.floor(s, out=s)
        if self._post is not None:
            s += self._post
        act = spec.activation
        if isinstance(act, ReLU):
            np.maximum(s, 0.0, out=s)
        elif isinstance(act, LeakyReLU):
            neg = s < 0
            s[neg] = np.floor(s[neg] * (act.slope * 2.0**-act.shift))
        if spec.clip is not None:
            np.clip(s, spec.clip[0], spec.clip[1], out=s)
        return s

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.finish(self.products(x))


class ConvLayer(Layer):
    """:class:`Conv2d`, on channels-last (H, W, C) activations; ``weight`` is the
    (taps * in, out) matrix, rows ordered by kernel row, kernel column, input channel (only
    the taps the mask keeps)."""

    def __init__(self, spec: Conv2d, input_bound: int):
        w = _integers(spec.weight, "weights")
        if w.ndim != 4:
            raise ValueError("convolution weights are (out, in, kh, kw)")
        cout, cin, kh, kw = w.shape
        self.kernel_size = (kh, kw)
        self.stride = _pair(spec.stride)
        self.padding = _pair(spec.padding)
        if min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError("stride must be positive and padding non-negative")
        mask = np.ones((kh, kw), dtype=bool) if spec.mask is None else np.asarray(spec.mask, dtype=bool)
        if mask.shape != (kh, kw):
            raise ValueError(f"mask has shape {mask.shape}, expected {(kh, kw)}")
        self.mask = mask
        self._masked = not mask.all()
        taps = w.transpose(2, 3, 1, 0)[mask]  # (taps, in, out)
        self.in_channels = cin
        self.weight = np.ascontiguousarray(taps.reshape(-1, cout))
        super().__init__(spec, cout, np.abs(self.weight).sum(axis=0), input_bound)

    @property
    def kernel(self) -> int:
        """The side of a square kernel."""
        if self.kernel_size[0] != self.kernel_size[1]:
            raise ValueError("the kernel is not square")
        return self.kernel_size[0]

    def products(self, x: np.ndarray) -> np.ndarray:
        """(H, W, in) -> (Ho, Wo, out) sums, zero padding."""
        h, w, c = x.shape
        self._check_channels(c)
        kh, kw = self.kernel_size
        (sh, sw), (ph, pw) = self.stride, self.padding
        padded = np.pad(x, ((ph, ph), (pw, pw), (0, 0))) if ph or pw else x
        ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        if ho < 1 or wo < 1:
            raise ValueError("input smaller than the kernel")
        if (kh, kw) == (1, 1) and not self._masked:
            cols = padded[::sh, ::sw]
        else:
            cols = sliding_window_view(padded, (kh, kw, c))[::sh, ::sw, 0]  # (Ho, Wo, kh, kw, C)
            if self._masked:
                cols = cols[:, :, self.mask]  # (Ho, Wo, taps, C)
        return (np.ascontiguousarray(cols).reshape(ho * wo, -1) @ self.weight).reshape(ho, wo, -1)


class TransposedConvLayer(Layer):
    """:class:`ConvTranspose2d`, on channels-last activations; ``weight`` is the
    (in, kh * kw * out) matrix."""

    def __init__(self, spec: ConvTranspose2d, input_bound: int):
        w = _integers(spec.weight, "weights")
        if w.ndim != 4:
            raise ValueError("transposed convolution weights are (in, out, kh, kw)")
        cin, cout, kh, kw = w.shape
        self.kernel_size = (kh, kw)
        self.stride = _pair(spec.stride)
        self.padding = _pair(spec.padding)
        self.output_padding = _pair(spec.output_padding)
        (sh, sw), (ph, pw), (oh, ow) = self.stride, self.padding, self.output_padding
        if min(sh, sw) < 1 or min(ph, pw, oh, ow) < 0 or oh >= sh or ow >= sw:
            raise ValueError("stride must be positive, padding non-negative, output padding below the stride")
        self.in_channels = cin
        self.weight = np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(cin, kh * kw * cout))
        # an output position receives, from every input channel, the taps of one phase: kernel
        # rows ky = r (mod sh) and columns kx = q (mod sw)
        a = np.abs(w).sum(axis=0)  # (out, kh, kw)
        reach = np.stack([a[:, r::sh, q::sw].sum(axis=(1, 2)) for r in range(sh) for q in range(sw)])
        super().__init__(spec, cout, reach, input_bound)

    @property
    def kernel(self) -> int:
        if self.kernel_size[0] != self.kernel_size[1]:
            raise ValueError("the kernel is not square")
        return self.kernel_size[0]

    def products(self, x: np.ndarray) -> np.ndarray:
        """(H, W, in) -> (Ho, Wo, out) sums. Each input position spreads its taps onto the
        output (a scatter of products); the sums are exact, so their order does not matter."""
        h, w, c = x.shape
        self._check_channels(c)
        kh, kw = self.kernel_size
        (sh, sw), (ph, pw), (oh, ow) = self.stride, self.padding, self.output_padding
        ho, wo = (h - 1) * sh - 2 * ph + kh + oh, (w - 1) * sw - 2 * pw + kw + ow
        if ho < 1 or wo < 1:
            raise ValueError("the output would be empty")
        taps = (x.reshape(h * w, c) @ self.weight).reshape(h, w, kh, kw, -1)
        full = np.zeros(((h - 1) * sh + kh + oh, (w - 1) * sw + kw + ow, self.out_channels))
        for ky in range(kh):
            for kx in range(kw):
                full[ky:ky + sh * (h - 1) + 1:sh, kx:kx + sw * (w - 1) + 1:sw] += taps[:, :, ky, kx]
        return full[ph:ph + ho, pw:pw + wo]


class LinearLayer(Layer):
    """:class:`Linear` over the last axis; ``weight`` is the (in, out) matrix."""

    def __init__(self, spec: Linear, input_bound: int):
        w = _integers(spec.weight, "weights")
        if w.ndim != 2:
            raise ValueError("linear weights are (out, in)")
        self.in_channels = w.shape[1]
        self.weight = np.ascontiguousarray(w.T)
        super().__init__(spec, w.shape[0], np.abs(w).sum(axis=1), input_bound)

    def products(self, x: np.ndarray) -> np.ndarray:
        """(..., in) -> (..., out) sums."""
        self._check_channels(x.shape[-1])
        if x.ndim == 2:
            return x @ self.weight
        return (x.reshape(-1, x.shape[-1]) @ self.weight).reshape(*x.shape[:-1], -1)


def build_layer(spec: LayerSpec, input_bound: int) -> Layer:
    """One layer from its spec, for inputs of magnitude at most ``input_bound``; raises
    :class:`ValueError` if its sums could leave the exact float64 integers."""
    if isinstance(spec, Conv2d):
        return ConvLayer(spec, input_bound)
    if isinstance(spec, ConvTranspose2d):
        return TransposedConvLayer(spec, input_bound)
    if isinstance(spec, Linear):
        return LinearLayer(spec, input_bound)
    raise TypeError(f"not a layer spec: {spec!r}")


class FixedPointStack:
    """Layers applied in order, built from a list of specs (any number, any mix of types).

    ``input_range`` is the integer range of the first layer's input (an int ``n`` means
    ``-n .. n``); :meth:`__call__` clips its input to it. Building proves every layer exact
    (see the module docstring) or raises :class:`ValueError` naming the layer.
    """

    def __init__(self, specs: Sequence[LayerSpec], input_range: int | tuple[int, int]):
        lo, hi = (-int(input_range), int(input_range)) if isinstance(input_range, (int, np.integer)) \
            else (int(input_range[0]), int(input_range[1]))
        if lo > hi:
            raise ValueError("input range is empty")
        self.input_range = (lo, hi)
        bound = max(abs(lo), abs(hi))
        if bound >= EXACT_LIMIT:
            raise ValueError("input range exceeds exact float64 integers")
        self.layers: list[Layer] = []
        for i, spec in enumerate(specs):
            try:
                layer = build_layer(spec, bound)
            except ValueError as exc:
                raise ValueError(f"layer {i}: {exc}") from None
            self.layers.append(layer)
            bound = layer.output_bound

    @property
    def output_range(self) -> tuple[int, int]:
        return self.layers[-1].output_range if self.layers else self.input_range

    def inputs(self, x: np.ndarray) -> np.ndarray:
        """Integer (or integer-valued float) input -> clipped float64 copy."""
        a = np.asarray(x)
        lo, hi = self.input_range
        if np.issubdtype(a.dtype, np.integer):
            return np.clip(a, lo, hi).astype(np.float64)
        out = np.clip(a.astype(np.float64), lo, hi)
        if not np.array_equal(out, np.floor(out)):  # also refuses NaN
            raise ValueError("fixed-point inputs must be integers")
        return out

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Integer activations (channels last) -> the last layer's integer outputs (float64)."""
        out = self.inputs(x)
        for layer in self.layers:
            out = layer(out)
        return out
