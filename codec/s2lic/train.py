"""Training S2LIC-lite: the shared staged recipe of :mod:`codec.context.training` (stage 1,
the ACGC entropy model on cached latents of the shipped hyperprior's frozen transforms; then
end to end) with S2LIC's entropy model.

    python -m codec.s2lic.train --hyperprior codec/hyperprior/weights/hyperprior-lite.safetensors \\
        --data ../shared/data/train --run-dir runs/s2lic-s1 --minutes 60 --threads 2
"""

from __future__ import annotations

import functools

from ..context import training
from .weights import FAMILY

ABLATIONS = FAMILY.ablations
train_codec = functools.partial(training.train_codec, FAMILY)

if __name__ == "__main__":
    training.main(FAMILY)
