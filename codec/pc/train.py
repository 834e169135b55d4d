"""Learning HCLT parameters: mini-batch EM, then full-batch EM.

The expected counts of every parameter are ``theta * d log p(x) / d theta`` (the circuit
flows), which autograd gives from one upward pass (Peharz et al. 2016; Choi, Vergari &
Van den Broeck 2020). Mini-batch EM moves the parameters a step ``eta`` towards each
batch's EM solution; full-batch EM then accumulates the counts over the whole set.
Counts get a small Laplace pseudo-count so no probability is ever zero.
"""

from __future__ import annotations

import gzip
import struct
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .model import HCLT, chow_liu_tree, mutual_information

PSEUDOCOUNT = 1e-2


def read_idx_images(path: Path) -> np.ndarray:
    """Images of an idx3 file (optionally .gz) as (N, rows, cols) uint8."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        head = f.read(16)
        if len(head) < 16:
            raise ValueError(f"{path}: truncated idx header")
        magic, n, rows, cols = struct.unpack(">IIII", head)
        if magic != 2051:
            raise ValueError(f"{path}: not an idx3 image file (magic {magic})")
        data = f.read(n * rows * cols)
    if len(data) != n * rows * cols:
        raise ValueError(f"{path}: truncated idx data")
    return np.frombuffer(data, dtype=np.uint8).reshape(n, rows, cols)


def _counts(model: HCLT, x: torch.Tensor) -> tuple[float, list[torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    ll = model.log_likelihood(x).sum()
    ll.backward()
    with torch.no_grad():
        counts = [p * p.grad for p in (model.prior, model.edges, model.leaves)]
    return float(ll.detach()), counts


def _normalise(counts: list[torch.Tensor]) -> list[torch.Tensor]:
    return [(c + PSEUDOCOUNT) / (c + PSEUDOCOUNT).sum(-1, keepdim=True) for c in counts]


def train_hclt(train: np.ndarray, hidden: int, minibatch_epochs: int = 3, full_epochs: int = 10,
               batch: int = 500, eta: tuple[float, float] = (0.1, 0.01), seed: int = 0,
               valid: np.ndarray | None = None, log: Callable[[str], None] = print) -> tuple[HCLT, dict]:
    """Structure from ``train`` (N x D uint8), then EM. Returns the model and a training log."""
    t0 = time.time()
    x = torch.from_numpy(train.reshape(train.shape[0], -1).astype(np.int64))
    mi = mutual_information(train.reshape(train.shape[0], -1)[: min(20000, train.shape[0])])
    tree = chow_liu_tree(mi)
    model = HCLT(tree, hidden, seed)
    log(f"Chow-Liu tree over {tree.size} pixels, depth {int(tree.depths().max())}, K={hidden}, "
        f"{model.parameter_count} free parameters ({time.time() - t0:.1f} s)")
    history = []
    g = torch.Generator().manual_seed(seed)
    steps = minibatch_epochs * ((x.shape[0] + batch - 1) // batch)
    step = 0
    for epoch in range(minibatch_epochs):
        perm = torch.randperm(x.shape[0], generator=g)
        total = 0.0
        for i in range(0, x.shape[0], batch):
            ll, counts = _counts(model, x[perm[i:i + batch]])
            total += ll
            lr = eta[0] + (eta[1] - eta[0]) * step / max(1, steps - 1)
            with torch.no_grad():
                for p, new in zip((model.prior, model.edges, model.leaves), _normalise(counts)):
                    p.mul_(1 - lr).add_(lr * new)
            step += 1
        bpd = -total / (x.numel() * np.log(2))
        history.append({"phase": "minibatch", "epoch": epoch, "train_bpd": bpd, "seconds": time.time() - t0})
        log(f"mini-batch EM epoch {epoch}: train {bpd:.4f} bpd ({time.time() - t0:.0f} s)")
    for epoch in range(full_epochs):
        acc = None
        total = 0.0
        for i in range(0, x.shape[0], batch):
            ll, counts = _counts(model, x[i:i + batch])
            total += ll
            acc = counts if acc is None else [a + c for a, c in zip(acc, counts)]
        with torch.no_grad():
            for p, new in zip((model.prior, model.edges, model.leaves), _normalise(acc)):
                p.copy_(new)
        bpd = -total / (x.numel() * np.log(2))
        row = {"phase": "full", "epoch": epoch, "train_bpd": bpd, "seconds": time.time() - t0}
        if valid is not None:
            row["valid_bpd"] = model.bits_per_dim(torch.from_numpy(valid.reshape(valid.shape[0], -1).astype(np.int64)))
        history.append(row)
        log(f"full-batch EM epoch {epoch}: train {bpd:.4f} bpd"
            + (f", valid {row['valid_bpd']:.4f}" if "valid_bpd" in row else "") + f" ({time.time() - t0:.0f} s)")
    return model, {"history": history, "seconds": time.time() - t0}
