"""The staged coding loop: slices x checkerboard passes over one :mod:`entropy` stream.

A model that codes in stages implements :class:`StagedModel`: before each stage it gives
the means and table ids of the positions that stage codes (computed from what is decoded so
far), and after it receives their integer symbols. The encoder runs the same loop as the
decoder, collecting each stage's symbols, then pushes the stages in reverse into one
:class:`entropy.GroupEncoder` (ANS is last-in-first-out); the decoder pops them in order. The
number of sequential steps is ``2 x slices``; each is parallel over all positions.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

import entropy
from entropy import TableSet

from ..errors import CodecError, CorruptStreamError
from .checkerboard import PASSES, pass_mask


class StagedModel(Protocol):
    """A latent (H, W, M), channels-last, coded slice by slice in checkerboard passes."""

    slices: int
    slice_channels: int
    height: int
    width: int

    def parameters(self, index: int, which: int) -> tuple[np.ndarray, np.ndarray]:
        """Float32 means and table ids (H, W, C) of slice ``index`` for pass ``which`` (only the
        positions of that pass are used)."""

    def accept(self, index: int, which: int, symbols: np.ndarray, means: np.ndarray) -> None:
        """The integer symbols (H, W, C) of the pass (valid at its positions), with the means
        they were coded against."""


def _positions(model: StagedModel, which: int) -> np.ndarray:
    return np.broadcast_to(pass_mask(model.height, model.width, which)[:, :, None],
                           (model.height, model.width, model.slice_channels))


def encode(model: StagedModel, latent: np.ndarray, tables: TableSet) -> bytes:
    """Code the gained latent (H, W, M) float32; ``model`` ends holding the decoded latent."""
    C = model.slice_channels
    groups: list[tuple[np.ndarray, np.ndarray]] = []
    for i in range(model.slices):
        y = latent[:, :, i * C:(i + 1) * C]
        for which in PASSES:
            means, ids = model.parameters(i, which)
            r = np.round(y - means)
            if not np.isfinite(r).all() or np.abs(r).max(initial=0) > 2**31 - 1:
                raise CodecError("latent values out of range: the image cannot be coded with these weights")
            symbols = r.astype(np.int32)
            at = _positions(model, which)
            groups.append((symbols[at], ids[at]))
            model.accept(i, which, symbols, means)
    coder = entropy.GroupEncoder(tables)
    for values, ids in reversed(groups):
        coder.push_reverse(values, ids)
    return coder.finish()


def decode(model: StagedModel, data: bytes, tables: TableSet) -> None:
    """Inverse of :func:`encode`; ``model`` ends holding the decoded latent."""
    try:
        coder = entropy.GroupDecoder(data, tables)
        for i in range(model.slices):
            for which in PASSES:
                means, ids = model.parameters(i, which)
                at = _positions(model, which)
                symbols = np.zeros(at.shape, dtype=np.int32)
                symbols[at] = coder.pop(ids[at])
                model.accept(i, which, symbols, means)
        coder.finish()
    except entropy.RansError as exc:
        raise CorruptStreamError(str(exc)) from None
