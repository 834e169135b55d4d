"""The overfitted codec's decoder-side computations, in numpy alone.

Everything a decoder runs lives here: the architecture constants, the integer ARM
(:class:`FixedPointArm`), the bicubic upsampling of the latent grids and the synthesis. None
of it imports torch, so decoding a stream costs no deep-learning runtime; the encoder fits
its networks in torch (:mod:`codec.overfit.model`) and then computes its reconstruction with
these same functions.
"""

from __future__ import annotations

import math

import numpy as np

from ..fixedpoint import FixedPointStack, Linear, ReLU, to_fixed

LEVELS = 7
#: causal neighbourhood (row, column offsets) the ARM sees; previous rows reach one column to
#: the right, so values on the anti-diagonal ``c + 2r = t`` only depend on earlier ``t``
CONTEXT = ((-2, -1), (-2, 0), (-2, 1), (-1, -2), (-1, -1), (-1, 0), (-1, 1), (0, -2), (0, -1))
WAVE = 2  # wavefront index t = c + WAVE * r
ARM_HIDDEN = 16
SYN_HIDDEN = 24
#: Laplace scales the coder has tables for, and the mean resolution (1 / MEAN_STEPS)
SCALE_MIN, SCALE_MAX, SCALE_LEVELS = 0.05, 60.0, 32
MEAN_STEPS = 8
LOG_SCALE_MIN, LOG_SCALE_MAX = math.log(SCALE_MIN), math.log(SCALE_MAX)
#: Keys' bicubic kernel parameter (the one PyTorch and OpenCV use)
CUBIC_A = -0.75
#: tensor shapes of the networks, in stream order (weights then bias, layer by layer)
ARM_SHAPES = ((ARM_HIDDEN, len(CONTEXT)), (ARM_HIDDEN,), (ARM_HIDDEN, ARM_HIDDEN), (ARM_HIDDEN,),
              (2, ARM_HIDDEN), (2,))
SYNTHESIS_SHAPES = ((SYN_HIDDEN, LEVELS), (SYN_HIDDEN,), (SYN_HIDDEN, SYN_HIDDEN), (SYN_HIDDEN,),
                    (3, SYN_HIDDEN), (3,), (3, 3, 3, 3), (3,))


def grid_shapes(height: int, width: int) -> list[tuple[int, int]]:
    return [(-(-height // 2**i), -(-width // 2**i)) for i in range(LEVELS)]


# -- bicubic upsampling ---------------------------------------------------------------------
def cubic_taps(n_out: int, n_in: int, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices (n_out, 4) and weights (n_out, 4, float64) of bicubic upsampling by
    ``factor`` (half-pixel centres, borders clamped; Keys 1981 with a = -0.75)."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) / factor - 0.5
    f = np.floor(src)
    t = src - f  # exact: factor is a power of two
    a = CUBIC_A

    def near(x: np.ndarray) -> np.ndarray:  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: np.ndarray) -> np.ndarray:  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    weights = np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=1)
    index = np.clip(f.astype(np.int64)[:, None] + np.arange(-1, 3)[None, :], 0, n_in - 1)
    return index, weights


def upsample(grid: np.ndarray, factor: int, height: int, width: int) -> np.ndarray:
    """(h, w) float32 -> (height, width) float32: separable bicubic, rows then columns, each
    a fixed sequence of elementwise float32 operations (the same result on every run)."""
    if factor == 1:
        return grid[:height, :width]
    ri, rw = cubic_taps(height, grid.shape[0], factor)
    ci, cw = cubic_taps(width, grid.shape[1], factor)
    rw, cw = rw.astype(np.float32), cw.astype(np.float32)
    rows = grid[ri[:, 0]] * rw[:, 0, None]
    for k in range(1, 4):
        rows += grid[ri[:, k]] * rw[:, k, None]
    out = rows[:, ci[:, 0]] * cw[None, :, 0]
    for k in range(1, 4):
        out += rows[:, ci[:, k]] * cw[None, :, k]
    return out


# -- synthesis ------------------------------------------------------------------------------
def synthesize(weights: list[np.ndarray], grids: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """The decoder's reconstruction: synthesis weights (float32, :data:`SYNTHESIS_SHAPES`) and
    integer grids -> HxWx3 uint8. Float32 throughout, BLAS pinned to one thread."""
    from ..determinism import fixed_blas_threads

    w1, b1, w2, b2, w3, b3, wr, br = (np.asarray(a, dtype=np.float32) for a in weights)
    # a stream chooses the weights: any it sends may overflow float32 (IEEE semantics decide
    # the result; the end maps infinities to the range's ends and NaN to 0), without warnings
    with fixed_blas_threads(), np.errstate(over="ignore", invalid="ignore"):
        z = np.empty((height, width, LEVELS), dtype=np.float32)
        for i, g in enumerate(grids):
            z[:, :, i] = upsample(g.astype(np.float32), 2**i, height, width)
        h = z.reshape(-1, LEVELS) @ w1.T
        h += b1
        np.maximum(h, 0, out=h)
        h = h @ w2.T
        h += b2
        np.maximum(h, 0, out=h)
        x = h @ w3.T
        x += b3
        x = x.reshape(height, width, 3)
        # 3x3 refinement with replicated borders, added to its input
        p = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="edge")
        r = np.broadcast_to(br, x.shape).copy()
        for dy in range(3):
            for dx in range(3):
                r += p[dy:dy + height, dx:dx + width] @ np.ascontiguousarray(wr[:, :, dy, dx].T)
        x += r
        np.fmax(x, np.float32(0.0), out=x)  # as clip to 0..1, and NaN becomes 0 (fmax skips NaN)
        np.minimum(x, np.float32(1.0), out=x)
        x *= np.float32(255.0)
        return np.rint(x, out=x).astype(np.uint8)


def macs_per_pixel(height: int, width: int) -> dict[str, float]:
    """Multiply-accumulates per decoded pixel, by part."""
    n = height * width
    latents = sum(h * w for h, w in grid_shapes(height, width))
    c = len(CONTEXT)
    arm = latents * (c * ARM_HIDDEN + ARM_HIDDEN * ARM_HIDDEN + ARM_HIDDEN * 2) / n
    # separable bicubic: 4 taps down the rows of the (height x w_i) intermediate, 4 along
    upsample_macs = sum(4 * height * w + 4 * height * width for _, w in grid_shapes(height, width)[1:]) / n
    synthesis = LEVELS * SYN_HIDDEN + SYN_HIDDEN * SYN_HIDDEN + SYN_HIDDEN * 3 + 3 * 3 * 9
    return {"arm": arm, "upsampling": float(upsample_macs), "synthesis": float(synthesis),
            "total": arm + upsample_macs + synthesis}


# -- the integer ARM ------------------------------------------------------------------------
class FixedPointArm:
    """The ARM in integer arithmetic: weights ``round(w * 2^FRAC)``, activations in units of
    ``2^-FRAC``, products shifted back with floor division. Exact on every machine.

    A :class:`codec.fixedpoint.FixedPointStack` of three linear layers: inputs clipped to
    ``±INPUT_LIMIT``, weights at most ``WEIGHT_LIMIT``, hidden activations clipped to
    ``0 .. ACTIVATION_LIMIT`` after each ReLU, so every product and partial sum stays below
    2^53 (the stack proves it when built). The matrix products therefore run as float64 BLAS
    calls and give the same integers in any summation order, on any thread count.

    Outputs, per context row: ``base = floor(mean)`` and the table id
    ``scale_index * MEAN_STEPS + floor(frac(mean) * MEAN_STEPS)``.
    """

    FRAC = 8
    INPUT_LIMIT = 1 << 12
    WEIGHT_LIMIT = 1 << 16
    ACTIVATION_LIMIT = 1 << 24

    def __init__(self, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray,
                 w3: np.ndarray, b3: np.ndarray):
        arrays = [np.asarray(a, dtype=np.int64) for a in (w1, b1, w2, b2, w3, b3)]
        if max(int(np.abs(a).max()) for a in arrays) > self.WEIGHT_LIMIT:
            raise ValueError(f"ARM weights must lie within ±{self.WEIGHT_LIMIT}")
        self._ints = arrays
        w1, b1, w2, b2, w3, b3 = arrays
        hidden = (0, self.ACTIVATION_LIMIT)
        # the inputs are integers, so the first layer's sums are in units of 2^-FRAC already;
        # the next two shift their sums back by FRAC bits and add the bias after
        self._stack = FixedPointStack([
            Linear(weight=w1, bias=b1, activation=ReLU(), clip=hidden),
            Linear(weight=w2, bias=b2, shift=self.FRAC, bias_after_shift=True, activation=ReLU(), clip=hidden),
            Linear(weight=w3, bias=b3, shift=self.FRAC, bias_after_shift=True),
        ], self.INPUT_LIMIT)
        one = 1 << self.FRAC
        step = (LOG_SCALE_MAX - LOG_SCALE_MIN) / (SCALE_LEVELS - 1)
        self.ls_min = int(round(LOG_SCALE_MIN * one))
        self.ls_step = int(round(step * one))

    @classmethod
    def quantise(cls, params: list[np.ndarray]) -> list[np.ndarray]:
        """Float weights (ARM_SHAPES order) -> the integers a stream carries."""
        return [to_fixed(p, cls.FRAC, cls.WEIGHT_LIMIT).astype(np.int64) for p in params]

    def arrays(self) -> list[np.ndarray]:
        return list(self._ints)

    def _outputs(self, ctx: np.ndarray) -> np.ndarray:
        """(n, 2) integer-valued float64: mean and log-scale in units of 2^-FRAC."""
        return self._stack(ctx)

    def __call__(self, ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ctx (n, len(CONTEXT)) integers -> (base int64, table id int64)."""
        out = self._outputs(ctx).astype(np.int64)
        mean8 = out[:, 0] >> (self.FRAC - 3)  # floor(mean * 8)
        base = mean8 >> 3
        frac = mean8 & 7
        s = np.minimum(np.maximum((out[:, 1] - self.ls_min + self.ls_step // 2) // self.ls_step, 0), SCALE_LEVELS - 1)
        return base, s * MEAN_STEPS + frac


assert MEAN_STEPS == 8 and FixedPointArm.FRAC >= 3
