"""Quality metrics on decoded pixels, and the Bjontegaard delta rate."""

from __future__ import annotations

import math

import numpy as np


#: samples per block of :func:`psnr`: a few megabytes of temporaries whatever the image size
PSNR_BLOCK = 1 << 20


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB over all samples of two uint8 images (255 peak).

    The squared error of integer samples is summed exactly, in int64, a block of rows at a
    time: an 8000x6000 image costs a few megabytes beyond its two inputs, not two float64
    copies of them (8 times their size), and the value is the float64 mean's, whose sums of
    squares stay below 2^53 and so are exact too.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"psnr of arrays of different shapes {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError("psnr of empty arrays")
    exact = np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer) \
        and a.itemsize <= 2 and b.itemsize <= 2
    work = np.int64 if exact else np.float64
    rows = a.reshape(a.shape[0], -1) if a.ndim > 1 else a.reshape(-1, 1)
    other = b.reshape(rows.shape)
    step = max(1, PSNR_BLOCK // max(1, rows.shape[1]))
    total = work(0)
    for i in range(0, rows.shape[0], step):
        d = rows[i:i + step].astype(work) - other[i:i + step]
        total += np.einsum("ij,ij->", d, d)
    mse = float(total) / a.size
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM (Wang et al. 2003) of two HxWxC uint8 images, data range 255."""
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim

    ta = torch.from_numpy(np.array(a, dtype=np.float32)).permute(2, 0, 1)[None]
    tb = torch.from_numpy(np.array(b, dtype=np.float32)).permute(2, 0, 1)[None]
    return float(_ms_ssim(ta, tb, data_range=255.0))


def ms_ssim_db(value: float) -> float:
    return -10.0 * math.log10(max(1e-12, 1.0 - value))


def bd_rate(rate_a, dist_a, rate_b, dist_b) -> float:
    """Bjontegaard delta rate of curve B against curve A, in percent (negative: B saves bits).

    Log-rate is interpolated as a function of quality with monotone piecewise-cubic (PCHIP)
    curves and integrated over the overlapping quality range (Bjontegaard, VCEG-M33, with the
    piecewise-cubic interpolation later adopted by VCEG-AL22 and JVET's tools).
    Returns NaN when the curves do not overlap.
    """
    from scipy.interpolate import PchipInterpolator

    def prep(r, d):
        r = np.asarray(r, dtype=np.float64)
        d = np.asarray(d, dtype=np.float64)
        order = np.argsort(d)
        d, lr = d[order], np.log(r[order])
        keep = np.concatenate([[True], np.diff(d) > 1e-9])
        return d[keep], lr[keep]

    da, la = prep(rate_a, dist_a)
    db, lb = prep(rate_b, dist_b)
    lo, hi = max(da[0], db[0]), min(da[-1], db[-1])
    if len(da) < 2 or len(db) < 2 or hi <= lo:
        return float("nan")
    fa, fb = PchipInterpolator(da, la), PchipInterpolator(db, lb)
    ia = fa.integrate(lo, hi)
    ib = fb.integrate(lo, hi)
    return float((math.exp((ib - ia) / (hi - lo)) - 1.0) * 100.0)
