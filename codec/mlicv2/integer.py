"""MLICv2's multi-reference entropy model in integers: the coding twin of
:class:`~codec.mlicv2.entropy_model.MultiReferenceEntropyModel`.

It follows the float model operation for operation (see :mod:`codec.context.integer` for the
number system and :mod:`codec.context.tiles` for the loop it plugs its contexts into).
"""

from __future__ import annotations

import numpy as np

from ..context.integer import IntegerAttention, IntegerReweight, checkerboard_conv, conv_stack
from ..context.tiles import IntegerSlicedModel, IntegerSliceHeads, SlicedTile, Weights, has_module
from .entropy_model import EntropyModelConfig


class _Slice(IntegerSliceHeads):
    def __init__(self, w: Weights, p: str):
        super().__init__(w, p)
        self.reweight = IntegerReweight(w, f"{p}.reweight") if has_module(w, f"{p}.reweight") else None
        self.channel = conv_stack(w, [(f"{p}.channel.0", True), (f"{p}.channel.2", True)], f"{p}.channel") \
            if has_module(w, f"{p}.channel") else None
        self.inter = IntegerAttention(w, f"{p}.inter") if has_module(w, f"{p}.inter") else None
        self.intra = IntegerAttention(w, f"{p}.intra") if has_module(w, f"{p}.intra") else None
        self.local = checkerboard_conv(w, f"{p}.local.0") if has_module(w, f"{p}.local") else None


class TileModel(SlicedTile):
    """One tile's latent under MLICv2's contexts."""

    net: "IntegerMultiReference"

    def _guide(self) -> np.ndarray:
        parts = ([self.embed] if self.net.config.hyper_guided else []) + self.decoded[-1:]
        return np.concatenate(parts, axis=2)

    def anchor_features(self, index: int) -> list[np.ndarray]:
        s: _Slice = self.net.slices[index]
        feats = []
        if s.channel is not None:
            prev = np.concatenate(self.decoded, axis=2)
            feats.append(s.channel(s.reweight(prev) if s.reweight is not None else prev))
        if s.inter is not None:
            feats.append(s.inter(self._guide(), self.decoded[-1] if index else self.embed))
        return feats

    def non_anchor_features(self, index: int, anchors_u: np.ndarray) -> list[np.ndarray]:
        s: _Slice = self.net.slices[index]
        feats = []
        if s.intra is not None:
            feats.append(s.intra(self._guide(), anchors_u, key_mask=self.anchor))
        if s.local is not None:
            feats.append(s.local(anchors_u))
        return feats


class IntegerMultiReference(IntegerSlicedModel):
    """Built once from the float16 weights (``prefix.*`` keys of a state dict, as numpy)."""

    tile_class = TileModel

    def __init__(self, weights: Weights, cfg: EntropyModelConfig, prefix: str = "em"):
        super().__init__(weights, cfg, prefix)
        self.slices = [_Slice(weights, f"{prefix}.slices.{i}") for i in range(cfg.slices)]
