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

The layers are :mod:`codec.fixedpoint` layers: every product and partial sum is an integer
below 2^53 (proved from the weights when they load), so the convolutions run as float64 matrix
products and give the same integers in any order, on any thread count. The outputs become
float32 means and scales through single IEEE multiplications by gains stored as float32,
which every machine rounds alike.
"""

from __future__ import annotations

import numpy as np

from .. import fixedpoint
from ..fixedpoint import ConvTranspose2d, Conv2d, FixedPointStack, Layer, LeakyReLU

W_FRAC = 12
A_FRAC = 12
LEAK = 41  # LeakyReLU slope 41 / 4096 (about torch's 0.01)
INPUT_LIMIT = 1 << 12
ACTIVATION_LIMIT = 1 << 28


def integer_weights(w: np.ndarray) -> np.ndarray:
    return fixedpoint.to_fixed(w, W_FRAC)


def integer_biases(b: np.ndarray) -> np.ndarray:
    return fixedpoint.to_fixed(b, A_FRAC + W_FRAC)


class IntegerHyperSynthesis:
    """``h_s`` of :class:`~codec.hyperprior.model.MeanScaleHyperprior` in fixed point.

    Built from the float16 weights of the three ``h_s`` layers (two 5x5 stride-2 transposed
    convolutions, each followed by LeakyReLU, then a 3x3 convolution) and, per quality, the
    integer ``inv_hgain`` and the float32 ``gain``. ``layers`` are the built
    :class:`codec.fixedpoint.Layer` objects (integer weight matrices and biases).
    """

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]], inv_hgain_fixed: np.ndarray,
                 gain: np.ndarray, scale_min: float):
        if len(layers) != 3:
            raise ValueError("the hyper-synthesis has three layers")
        self.inv_hgain_fixed = np.asarray(inv_hgain_fixed, dtype=np.float64)
        self.gain = np.asarray(gain, dtype=np.float32)
        self.scale_min = np.float32(scale_min)
        specs: list[fixedpoint.LayerSpec] = []
        clip = (-ACTIVATION_LIMIT, ACTIVATION_LIMIT)
        for i, (w, b) in enumerate(layers):
            w_int, b_int = integer_weights(w), integer_biases(b)
            if i < 2:  # torch's (in, out, k, k); LeakyReLU after
                specs.append(ConvTranspose2d(weight=w_int, bias=b_int, stride=2, padding=2, output_padding=1,
                                             shift=W_FRAC, rounding="half_up", activation=LeakyReLU(LEAK, 12),
                                             clip=clip))
            else:  # (out, in, k, k), zero padding k // 2
                specs.append(Conv2d(weight=w_int, bias=b_int, padding=w_int.shape[-1] // 2, shift=W_FRAC,
                                    rounding="half_up", clip=clip))
        # the input: z clipped to ±INPUT_LIMIT, times inv_hgain (units 2^-A_FRAC)
        input_limit = INPUT_LIMIT * int(np.abs(self.inv_hgain_fixed).max())
        try:
            self.stack = FixedPointStack(specs, input_limit)
        except ValueError as exc:
            raise ValueError(f"hyper-synthesis {exc}") from None
        self.layers: list[Layer] = self.stack.layers

    def fixed_outputs(self, z: np.ndarray, quality: int) -> np.ndarray:
        """Integer hyper-latent (1, N, h, w) -> the raw outputs (2M, 4h, 4w), units 2^-A_FRAC."""
        x = np.clip(z[0].transpose(1, 2, 0).astype(np.float64), -INPUT_LIMIT, INPUT_LIMIT)  # channels last
        x *= self.inv_hgain_fixed[quality - 1]
        return self.stack(x).transpose(2, 0, 1)

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


def _conv(x: np.ndarray, layer: Layer) -> np.ndarray:
    """A layer's convolution sums, before bias and rounding: (H, W, C) -> (H, W, out)."""
    return layer.products(x)


def _transposed_conv(x: np.ndarray, layer: Layer) -> np.ndarray:
    """A transposed layer's sums: (H, W, C) -> (2H, 2W, out)."""
    return layer.products(x)
