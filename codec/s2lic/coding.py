"""S2LIC-lite image coding: the hyperprior's transforms and tiles, S2LIC's ACGC entropy
model, through the shared context codec (:mod:`codec.context.codec`). Each tile's section is
one rANS stream of ``2 x slices`` groups; table ids come from the integer hyper-synthesis and
:mod:`codec.s2lic.integer`, so they repeat on every machine."""

from __future__ import annotations

from ..context.codec import ContextCodec, ContextFactory
from .weights import FAMILY

S2LICCodec = ContextCodec


def load_default() -> ContextFactory:
    return ContextFactory(FAMILY)
