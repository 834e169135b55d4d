"""HCLT weights files: log-probabilities quantised to 8 bits, the tree as int16 parents.

Every probability is stored as ``q = round(-log(p) / LOG_STEP)``, clipped to 0..255, so a
probability is known to within a factor ``exp(LOG_STEP / 2)`` (3%) and nothing below
``exp(-255 * LOG_STEP)`` (about 1e-7) is stored: that costs well under 0.01 bits per pixel and
keeps a K=32 model for 28x28 images at 7 MB. Loading renormalises every distribution in
float64 (a softmax of ``-q * LOG_STEP`` with a fixed exp table and a fixed summation order),
so the coder's probabilities are a fixed function of the file's bytes, the same bits on every
machine: encoder and decoder load the same numbers and, with :mod:`codec.pc.coding`'s fixed
operation order, build the same integer frequencies.
"""

from __future__ import annotations

import decimal
import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import WeightsError
from ..weightfiles import InstalledWeights, read_weights, write_weights
from ..weightfiles import installed_weights as _installed
from .model import HCLT, Tree
from .ordered import row_sum

WEIGHTS_DIR = Path(__file__).with_name("weights")
#: model ids as written in the container's ``model_id`` field
MODEL_IDS = {"hclt": 1}
LOG_STEP = 1.0 / 16


def quantise_log(p: torch.Tensor) -> torch.Tensor:
    """uint8 codes of probabilities (see the module docstring)."""
    return torch.round(-torch.log(p.detach().double()) / LOG_STEP).clamp(0, 255).to(torch.uint8).contiguous()


@functools.lru_cache(maxsize=1)
def exp_table() -> np.ndarray:
    """``exp(-j * LOG_STEP)`` for ``j = 0 .. 255`` as float64: computed in decimal arithmetic
    (software, the same digits everywhere) to 40 digits, then rounded once to float64."""
    with decimal.localcontext() as ctx:
        ctx.prec = 40
        return np.array([float((decimal.Decimal(-j) * decimal.Decimal(LOG_STEP)).exp()) for j in range(256)])


def dequantise_log(q: torch.Tensor) -> torch.Tensor:
    """float64 probabilities, each distribution (last axis) renormalised: the softmax of
    ``-q * LOG_STEP``, ``exp(-(q - min q) * LOG_STEP)`` over its sum, with the exponentials
    from :func:`exp_table` and the sum in :func:`codec.pc.ordered.row_sum`'s order (a
    library softmax's exp and sum differ in their last bits between CPUs)."""
    a = q.numpy().astype(np.int64)
    e = exp_table()[a - a.min(axis=-1, keepdims=True)]
    rows = e.reshape(-1, e.shape[-1])
    return torch.from_numpy((rows / row_sum(rows)[:, None]).reshape(e.shape))


def export_weights(model: HCLT, path: Path, shape: tuple[int, int], manifest: dict[str, Any]) -> dict[str, Any]:
    """Write an HCLT as ``path`` (.safetensors) plus its JSON manifest."""
    tensors = {
        "log_prior": quantise_log(model.prior),
        "log_edges": quantise_log(model.edges),
        "log_leaves": quantise_log(model.leaves),
        "parent": torch.from_numpy(model.tree.parent.astype(np.int16)),
    }
    meta = {"hidden": str(model.hidden), "height": str(shape[0]), "width": str(shape[1]),
            "log_step": repr(LOG_STEP)}
    return write_weights(tensors, meta, path, {"hidden": model.hidden, "height": shape[0], "width": shape[1],
                                               "parameters": model.parameter_count, **manifest})


def load_model_file(path: Path, expected_sha256: str | None = None) -> tuple[HCLT, tuple[int, int]]:
    """The model (float64 parameters) and the image shape (height, width) it codes."""
    tensors, meta = read_weights(path, expected_sha256)
    try:
        hidden, shape = int(meta["hidden"]), (int(meta["height"]), int(meta["width"]))
        if float(meta["log_step"]) != LOG_STEP:
            raise ValueError(f"log_step {meta['log_step']} is not {LOG_STEP}")
        parent = tensors["parent"].numpy().astype(np.int64)
        roots = np.nonzero(parent < 0)[0]
        if roots.size != 1 or parent.size != shape[0] * shape[1]:
            raise ValueError("parent array is not one tree over the image")
        tree = Tree(parent, int(roots[0]))
        tree.bfs_order()  # raises on a cycle or a forest
        model = HCLT(tree, hidden).double()
        with torch.no_grad():
            for name in ("prior", "edges", "leaves"):
                stored = tensors[f"log_{name}"]
                if stored.dtype != torch.uint8 or tuple(stored.shape) != tuple(getattr(model, name).shape):
                    raise ValueError(f"{name} is {stored.dtype} {tuple(stored.shape)}")
                getattr(model, name).copy_(dequantise_log(stored))
    except (KeyError, ValueError, TypeError) as exc:
        raise WeightsError(f"weights file {path} is not a valid HCLT weights file ({exc})") from None
    return model.eval(), shape


def installed_weights(codec_name: str) -> list[InstalledWeights]:
    return _installed(WEIGHTS_DIR, f"{codec_name}.json") + _installed(WEIGHTS_DIR, f"{codec_name}-*.json")


@functools.lru_cache(maxsize=4)
def load_cached(path: str, sha256: str) -> tuple[HCLT, tuple[int, int]]:
    return load_model_file(Path(path), expected_sha256=sha256)



def export_checkpoint(checkpoint: Path, out: Path, codec_name: str) -> dict[str, Any]:
    """Turn a training checkpoint (:func:`codec.pc.train.save_checkpoint`) into shipped weights."""
    from .train import load_checkpoint

    model, info = load_checkpoint(checkpoint)
    side = int(round(model.tree.size ** 0.5))
    return export_weights(model, out, (side, side), {"codec": codec_name, "training": info})


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Export an HCLT training checkpoint as shipped weights.")
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--codec", required=True, help="pc-mnist or pc-fashion-mnist")
    ap.add_argument("--out", type=Path, help="default: the package's weights folder")
    a = ap.parse_args()
    print(export_checkpoint(a.checkpoint, a.out or WEIGHTS_DIR / f"{a.codec}.safetensors", a.codec)["sha256"])
