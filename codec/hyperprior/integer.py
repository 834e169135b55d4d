"""The hyper-synthesis in integer arithmetic: entropy parameters that repeat on any machine.

The decoder must pick exactly the Gaussian table the encoder picked for every latent. A
float convolution's sums depend on the order the hardware and the thread split give them,
so a scale that falls next to a table edge can land on different sides on two machines and
the stream then fails to decode (the usual way learned-codec files break when they move).
Here the hyper-synthesis runs in fixed point, as Cool-chic runs its entropy model
(Ladune et al., "COOL-CHIC: Coordinate-based Low Complexity Hierarchical Image Codec",
ICCV 2023):

* weights are ``round(w * 2^W_FRAC)``, biases ``round(b * 2^(A_FRAC + W_FRAC))``, both taken
  exactly from the stored float16 weights (a power-of-two scaling of a float16 is exact);
* activations are integers in units of ``2^-A_FRAC``; after each layer the sums are rounded
  (half up) back to that unit, LeakyReLU multiplies negatives by ``LEAK / 2^12`` (floored), and every
  activation is clipped to ``±ACTIVATION_LIMIT``;
* the input ``z * inv_hgain`` uses ``inv_hgain`` stored as integers in units of
  ``2^-A_FRAC``, and ``z`` clipped to ``±INPUT_LIMIT``.

Every product and partial sum is then an integer below 2^53 (checked when the weights load),
so the convolutions run as float64 matrix products and give the same integers in any order,
on any thread count. The outputs become float32 means and scales through single IEEE
multiplications by gains stored as float32, which every machine rounds alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

W_FRAC = 12
A_FRAC = 12
LEAK = 41  # LeakyReLU slope 41 / 4096 (about torch's 0.01)
INPUT_LIMIT = 1 << 12
ACTIVATION_LIMIT = 1 << 28
_EXACT = float(1 << 53)


@dataclass(frozen=True)
class _Layer:
    weight: np.ndarray  # float64 integers: (k * k * in, out), or (in, k * k * out) when transposed
    bias: np.ndarray  # (out,) float64 integers, units 2^-(A_FRAC + W_FRAC)
    kernel: int
    transposed: bool  # a stride-2 transposed convolution (padding 2, output padding 1)
    leaky: bool


def integer_weights(w: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(w, dtype=np.float64) * 2.0**W_FRAC)


def integer_biases(b: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(b, dtype=np.float64) * 2.0 ** (A_FRAC + W_FRAC))


class IntegerHyperSynthesis:
    """``h_s`` of :class:`~codec.hyperprior.model.MeanScaleHyperprior` in fixed point.

    Built from the float16 weights of the three ``h_s`` layers (two 5x5 stride-2 transposed
    convolutions, each followed by LeakyReLU, then a 3x3 convolution) and, per quality, the
    integer ``inv_hgain`` and the float32 ``gain``.
    """

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]], inv_hgain_fixed: np.ndarray,
                 gain: np.ndarray, scale_min: float):
        if len(layers) != 3:
            raise ValueError("the hyper-synthesis has three layers")
        self.layers: list[_Layer] = []
        limit = float(INPUT_LIMIT) * float(np.abs(inv_hgain_fixed).max())
        for i, (w, b) in enumerate(layers):
            transposed = i < 2
            w_int = integer_weights(w)
            if transposed:  # torch stores (in, out, k, k)
                cin, cout, k, _ = w_int.shape
                mat = w_int.transpose(0, 2, 3, 1).reshape(cin, k * k * cout)
                # the largest sum into one output: each output sees every input channel at
                # ceil(k/2)^2 taps at most
                reach = np.abs(w_int).sum(axis=0).max() * (-(-k // 2)) ** 2
            else:  # (out, in, k, k)
                cout, cin, k, _ = w_int.shape
                mat = w_int.transpose(2, 3, 1, 0).reshape(k * k * cin, cout)
                reach = np.abs(mat).sum(axis=0).max()
            b_int = integer_biases(b)
            if limit * reach + np.abs(b_int).max() + 2.0 ** W_FRAC >= _EXACT:
                raise ValueError(f"hyper-synthesis layer {i} could exceed exact float64 integers")
            self.layers.append(_Layer(np.ascontiguousarray(mat), b_int, k, transposed, i < 2))
            limit = float(ACTIVATION_LIMIT)
        self.inv_hgain_fixed = np.asarray(inv_hgain_fixed, dtype=np.float64)
        self.gain = np.asarray(gain, dtype=np.float32)
        self.scale_min = np.float32(scale_min)

    def fixed_outputs(self, z: np.ndarray, quality: int) -> np.ndarray:
        """Integer hyper-latent (1, N, h, w) -> the raw outputs (2M, 4h, 4w), units 2^-A_FRAC."""
        x = np.clip(z[0].transpose(1, 2, 0).astype(np.float64), -INPUT_LIMIT, INPUT_LIMIT)  # channels last
        x *= self.inv_hgain_fixed[quality - 1]
        for layer in self.layers:
            x = _transposed_conv(x, layer) if layer.transposed else _conv(x, layer)
            x += layer.bias + 2.0 ** (W_FRAC - 1)  # rounds half up below
            x *= 2.0**-W_FRAC  # a power of two: the floor below is exact
            np.floor(x, out=x)
            if layer.leaky:
                neg = x < 0
                x[neg] = np.floor(x[neg] * (LEAK * 2.0**-12))
            np.clip(x, -ACTIVATION_LIMIT, ACTIVATION_LIMIT, out=x)
        return x.transpose(2, 0, 1)

    def __call__(self, z: np.ndarray, quality: int) -> tuple[np.ndarray, np.ndarray]:
        """Integer hyper-latent (1, N, h, w) -> float32 mean and scale of the gained latent,
        each (1, M, 4h, 4w)."""
        out = self.fixed_outputs(z, quality)
        m = out.shape[0] // 2
        gain = self.gain[quality - 1][:, None, None]
        unit = np.float32(2.0**-A_FRAC)
        mu = (out[:m].astype(np.float32) * unit) * gain
        sigma = np.maximum(np.abs(out[m:]).astype(np.float32) * unit, self.scale_min) * gain
        return mu[None], sigma[None]


def _conv(x: np.ndarray, layer: _Layer) -> np.ndarray:
    """Stride-1 convolution with zero padding k//2: (H, W, C) -> (H, W, out)."""
    h, w, c = x.shape
    k = layer.kernel
    padded = np.pad(x, ((k // 2, k // 2), (k // 2, k // 2), (0, 0)))
    cols = sliding_window_view(padded, (k, k, c))[:, :, 0]  # (H, W, k, k, C)
    return (np.ascontiguousarray(cols).reshape(h * w, -1) @ layer.weight).reshape(h, w, -1)


def _transposed_conv(x: np.ndarray, layer: _Layer) -> np.ndarray:
    """5x5 stride-2 transposed convolution, padding 2, output padding 1: (H, W, C) -> (2H, 2W, out).

    Each input position spreads its k*k taps onto the output (a scatter of products); the
    sums are exact integers, so their order does not matter.
    """
    h, w, c = x.shape
    k = layer.kernel
    taps = (x.reshape(h * w, c) @ layer.weight).reshape(h, w, k, k, -1)
    full = np.zeros((2 * (h - 1) + k, 2 * (w - 1) + k, taps.shape[-1]))
    for ky in range(k):
        for kx in range(k):
            full[ky:ky + 2 * h:2, kx:kx + 2 * w:2] += taps[:, :, ky, kx]
    p = k // 2
    return full[p:p + 2 * h, p:p + 2 * w]
