"""The checkerboard split of a latent: anchors first, then the positions between them.

He et al., "Checkerboard Context Model for Efficient Learned Image Compression" (CVPR 2021):
anchors are coded with no spatial context; every other position sees its four anchor
neighbours. Here a position ``(r, c)`` is an anchor when ``r + c`` is even, counted from the
top-left corner of the latent being coded (a tile's origin lies on an even row and column, so
tiles and whole images agree).
"""

from __future__ import annotations

import numpy as np

ANCHOR = 0
NON_ANCHOR = 1
PASSES = (ANCHOR, NON_ANCHOR)


def anchors(height: int, width: int) -> np.ndarray:
    """Boolean (height, width): True at anchors."""
    r = np.arange(height)[:, None]
    c = np.arange(width)[None, :]
    return (r + c) % 2 == 0


def pass_mask(height: int, width: int, which: int) -> np.ndarray:
    """Boolean (height, width): the positions coded in pass ``which``."""
    a = anchors(height, width)
    return a if which == ANCHOR else ~a


def neighbour_mask(kernel: int) -> np.ndarray:
    """Taps of a ``kernel`` x ``kernel`` convolution that reach anchors from a non-anchor
    (an odd city-block distance from the centre)."""
    k = np.arange(kernel) - kernel // 2
    return (k[:, None] + k[None, :]) % 2 != 0
