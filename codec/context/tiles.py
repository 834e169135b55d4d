"""The integer twin of :mod:`codec.context.slices`: one tile's latent coded slice by slice.

A sliced model's coding side is an :class:`IntegerSlicedModel` (the integer hyperprior
embedding and, per slice, the integer heads and contexts, built once from the stored float16
weights) and, per tile, a :class:`SlicedTile`, which is a
:class:`codec.context.coding.StagedModel`. Models implement only their contexts
(:meth:`SlicedTile.anchor_features` and :meth:`SlicedTile.non_anchor_features`); the heads,
the residual prediction and the passage between integers and floats are here.

Between the integer networks and the entropy coder the values pass through single float32
operations, which IEEE 754 rounds alike on every machine: a head's fixed-point mean ``m``
becomes ``(float32(m) * 2^-12) * gain``; a decoded latent is ``float32(symbol) + mean`` (plus
the residual correction); it returns to the contexts as ``round(y_hat * inv_gain * 2^12)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .checkerboard import ANCHOR, anchors
from .integer import A_FRAC, ACTIVATION_LIMIT, IntegerHead, conv_stack, hard_tanh_half

UNIT = np.float32(2.0**-A_FRAC)
SCALE = np.float32(2.0**A_FRAC)

Weights = Mapping[str, np.ndarray]


def has_module(w: Weights, name: str) -> bool:
    """Whether the state dict ``w`` holds the module (or parameter) ``name``."""
    return name in w or any(k.startswith(f"{name}.") for k in w)


class IntegerSliceHeads:
    """The integer heads of one slice (``prefix`` names its :class:`~codec.context.slices.SliceHeads`)."""

    def __init__(self, w: Weights, prefix: str):
        self.head_anchor = IntegerHead(w, f"{prefix}.head_anchor")
        self.head_non_anchor = IntegerHead(w, f"{prefix}.head_non_anchor")
        self.residual = IntegerHead(w, f"{prefix}.residual") if has_module(w, f"{prefix}.residual") else None


class IntegerSlicedModel:
    """Built once from the float16 weights (``prefix.*`` keys of a state dict, as numpy);
    subclasses set ``tile_class`` and build ``self.slices``."""

    tile_class: type["SlicedTile"]

    def __init__(self, weights: Weights, cfg: Any, prefix: str = "em"):
        self.config = cfg
        self.embed = conv_stack(weights, [(f"{prefix}.hyper_embed.0", True), (f"{prefix}.hyper_embed.2", True)],
                                "hyper embedding")
        self.slices: list[Any] = []

    def tile(self, hyper: np.ndarray, quality: int, gain: np.ndarray, inv_gain: np.ndarray,
             scales: np.ndarray) -> "SlicedTile":
        """The coding state of one tile: ``hyper`` are the integer hyper-synthesis outputs
        (2M, h, w) in units of 2^-12 (ungained means, then scales); ``gain``/``inv_gain`` the
        quality's float32 gains (M,); ``scales`` the float32 upper edges of the scale tables."""
        return self.tile_class(self, hyper, quality, gain, inv_gain, scales)


class SlicedTile:
    """One tile's latent, coded slice by slice (a :class:`codec.context.coding.StagedModel`)."""

    def __init__(self, net: IntegerSlicedModel, hyper: np.ndarray, quality: int, gain: np.ndarray,
                 inv_gain: np.ndarray, scales: np.ndarray):
        cfg = net.config
        self.net = net
        self.q = quality - 1
        self.slices = cfg.slices
        self.slice_channels = cfg.slice_channels
        self.height, self.width = hyper.shape[1:]
        self.hyper = np.clip(hyper.transpose(1, 2, 0).astype(np.float64), -ACTIVATION_LIMIT, ACTIVATION_LIMIT)
        self.gain = np.asarray(gain, dtype=np.float32)
        self.inv_gain = np.asarray(inv_gain, dtype=np.float32)
        self.scales = scales
        self.scale_min = np.float32(cfg.scale_min)
        self.anchor = anchors(self.height, self.width)
        self.embed = net.embed(self.hyper)
        self.decoded: list[np.ndarray] = []  # ungained, fixed point, per slice
        #: the decoded gained latent (H, W, M) float32, filled slice by slice
        self.y_hat = np.zeros((self.height, self.width, cfg.M), dtype=np.float32)
        self._base: np.ndarray | None = None
        self._own: np.ndarray | None = None
        self._anchor_out: tuple[np.ndarray, np.ndarray] | None = None  # symbols, means
        self._anchors_u: np.ndarray | None = None

    # -- what a model provides ---------------------------------------------------------------
    def anchor_features(self, index: int) -> list[np.ndarray]:
        """Contexts of slice ``index`` from ``self.decoded`` (fixed point, channels last)."""
        raise NotImplementedError

    def non_anchor_features(self, index: int, anchors_u: np.ndarray) -> list[np.ndarray]:
        """Contexts of the slice's non-anchors from its decoded anchors (zero elsewhere)."""
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------------
    def _sl(self, index: int) -> slice:
        C = self.slice_channels
        return slice(index * C, (index + 1) * C)

    def _to_contexts(self, y_hat: np.ndarray, index: int) -> np.ndarray:
        u = np.round((y_hat * self.inv_gain[self._sl(index)]) * SCALE)
        return np.clip(u.astype(np.float64), -ACTIVATION_LIMIT, ACTIVATION_LIMIT)

    def _parameters(self, out: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
        C = self.slice_channels
        out = np.clip(out, -ACTIVATION_LIMIT, ACTIVATION_LIMIT)
        g = self.gain[self._sl(index)]
        mu = (out[:, :, :C].astype(np.float32) * UNIT) * g
        sigma = np.maximum(np.abs(out[:, :, C:]).astype(np.float32) * UNIT, self.scale_min) * g
        ids = np.searchsorted(self.scales, sigma, side="left")
        return mu, np.minimum(ids, len(self.scales) - 1).astype(np.uint8)

    # -- the StagedModel interface ---------------------------------------------------------
    def parameters(self, index: int, which: int) -> tuple[np.ndarray, np.ndarray]:
        heads: IntegerSliceHeads = self.net.slices[index]
        M, C = self.net.config.M, self.slice_channels
        if which == ANCHOR:
            own = np.concatenate([self.hyper[:, :, self._sl(index)],
                                  self.hyper[:, :, M + index * C:M + (index + 1) * C]], axis=2)
            self._base = np.concatenate([own, self.embed, *self.anchor_features(index)], axis=2)
            self._own = own
            return self._parameters(heads.head_anchor(self._base, self.q) + own, index)
        assert self._base is not None and self._own is not None and self._anchors_u is not None
        extra = self.non_anchor_features(index, self._anchors_u)
        return self._parameters(heads.head_non_anchor(np.concatenate([self._base, *extra], axis=2), self.q)
                                + self._own, index)

    def accept(self, index: int, which: int, symbols: np.ndarray, means: np.ndarray) -> None:
        if which == ANCHOR:
            y_hat = symbols.astype(np.float32) + means
            self._anchors_u = self._to_contexts(y_hat, index) * self.anchor[:, :, None]
            self._anchor_out = (symbols, means)
            return
        assert self._anchor_out is not None and self._base is not None
        a = self.anchor[:, :, None]
        sym = np.where(a, self._anchor_out[0], symbols)
        mu = np.where(a, self._anchor_out[1], means)
        y_hat = sym.astype(np.float32) + mu
        heads: IntegerSliceHeads = self.net.slices[index]
        if heads.residual is not None:
            r = hard_tanh_half(heads.residual(np.concatenate([self._base, self._to_contexts(y_hat, index)], axis=2),
                                              self.q))
            y_hat = y_hat + r.astype(np.float32) * UNIT
        self.y_hat[:, :, self._sl(index)] = y_hat
        self.decoded.append(self._to_contexts(y_hat, index))
        self._base = self._own = self._anchor_out = self._anchors_u = None
