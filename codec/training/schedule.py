"""What every training loop shares: the learning-rate schedule and crash-safe checkpoints."""

from __future__ import annotations

import math
import os
from pathlib import Path


def warmup_cosine(lr: float, warmup: int, decay_from: float, step: int, progress: float,
                  floor: float = 0.1) -> float:
    """Linear warm-up from ``0.1 * lr`` over ``warmup`` steps, then ``lr`` until ``decay_from``
    of the run, then a cosine down to ``floor * lr`` at its end (``progress`` in 0..1)."""
    if step < warmup:
        return lr * (0.1 + 0.9 * step / warmup)
    if progress <= decay_from:
        return lr
    t = min(1.0, (progress - decay_from) / (1.0 - decay_from))
    return lr * (floor + (1.0 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def atomic_save(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary file renamed over ``path``: a crash never leaves half a
    checkpoint."""
    import torch

    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
