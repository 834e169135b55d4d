"""Training MLICv2-lite: the shared staged recipe of :mod:`codec.context.training` (stage 1
on cached latents of the shipped hyperprior, then end to end) with MLICv2's entropy model.

    python -m codec.mlicv2.train --hyperprior codec/hyperprior/weights/hyperprior-lite.safetensors \\
        --data ../shared/data/train --run-dir runs/mlicv2-s1 --minutes 60 --threads 2
"""

from __future__ import annotations

import functools

from ..context import training
from .weights import FAMILY

ABLATIONS = FAMILY.ablations
train_codec = functools.partial(training.train_codec, FAMILY)

if __name__ == "__main__":
    training.main(FAMILY)
