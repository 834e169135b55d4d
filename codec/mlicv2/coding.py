"""MLICv2-lite image coding: the hyperprior's transforms and tiles, MLICv2's entropy model,
through the shared context codec (:mod:`codec.context.codec`). Each tile's section is one rANS
stream of ``2 x slices`` groups; table ids come from the integer hyper-synthesis and
:mod:`codec.mlicv2.integer`, so they repeat on every machine."""

from __future__ import annotations

from ..context.codec import ContextCodec, ContextFactory
from .weights import FAMILY

MLICv2Codec = ContextCodec


def load_default() -> ContextFactory:
    return ContextFactory(FAMILY)
