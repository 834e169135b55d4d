"""How RGB-only image models code grayscale images (a policy the models share, not the API's).

A grayscale image is coded as RGB with three equal channels; the decoder returns the
rounded mean of the three decoded channels. Codecs whose networks see RGB call these two
functions at their edges; codecs with a grayscale path of their own do not.
"""

from __future__ import annotations

import numpy as np


def to_rgb(pixels: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 from HxWx1 (repeated) or HxWx3 (unchanged)."""
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
        raise ValueError(f"expected HxWx1 or HxWx3 pixels, not shape {pixels.shape}")
    return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels


def from_rgb(rgb: np.ndarray, channels: int) -> np.ndarray:
    """``rgb`` (HxWx3 uint8) as ``channels`` channels: itself, or the rounded channel mean."""
    if channels == 3:
        return rgb
    gray = (rgb.astype(np.uint16).sum(axis=2, keepdims=True) + 1) // 3
    return gray.astype(np.uint8)
