import math

import numpy as np
import pytest

from codec.metrics import bd_rate, psnr


def test_psnr_known_values():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    assert psnr(a, b) == float("inf")
    b[...] = 1
    assert psnr(a, b) == pytest.approx(20 * math.log10(255), abs=1e-9)


@pytest.mark.parametrize("factor", [0.5, 0.8, 1.0, 1.25, 2.0])
def test_bd_rate_of_a_constant_rate_factor(factor):
    rate = np.array([0.1, 0.25, 0.5, 1.0, 2.0])
    dist = 30 + 4 * np.log2(rate)
    assert bd_rate(rate, dist, rate * factor, dist) == pytest.approx((factor - 1) * 100, abs=1e-6)


def test_bd_rate_without_overlap_is_nan():
    assert math.isnan(bd_rate([1, 2], [30, 31], [1, 2], [40, 41]))


def test_psnr_is_the_float64_mean_exactly():
    rng = np.random.default_rng(4)
    for shape in [(7, 5, 3), (600, 700, 3), (9, 4), (13,)]:  # 600x700x3 spans several blocks
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        b = rng.integers(0, 256, shape, dtype=np.uint8)
        mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
        assert psnr(a, b) == 10.0 * math.log10(255.0**2 / mse)
    with pytest.raises(ValueError):
        psnr(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))


def test_psnr_of_a_large_image_needs_no_copy_of_it():
    import tracemalloc

    a = np.zeros((3000, 4000, 3), np.uint8)  # 36 MB: a float64 copy would be 288 MB
    b = np.full_like(a, 2)
    tracemalloc.start()
    try:
        value = psnr(a, b)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert value == pytest.approx(10.0 * math.log10(255.0**2 / 4))
    assert peak < a.nbytes
