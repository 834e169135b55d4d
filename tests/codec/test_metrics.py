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
