"""Exact conditionals of an HCLT, turned into integer tables, coded with rANS.

Pixels are coded in raster order. The conditional of pixel ``v`` given the pixels before
it is ``p(x_v | x_<v) ∝ sum_h out_v(h) * prod_children up_c(h) * p(x_v | h)``: ``up_c`` are
the upward messages of ``v``'s children (with the evidence seen so far) and ``out_v`` is the
downward message into ``v`` from the rest of the tree. Every later pixel is summed out,
which in a circuit just means its leaf contributes 1 (Liu, Mandt & Van den Broeck, ICLR 2022,
Sec. 4).

Efficient scheme: observing a pixel changes only the messages on its path to the root, so
each step recomputes the downward messages along one path and, after coding, the upward
messages along the same path: O(depth * K^2) per pixel instead of a full pass over the
circuit, for a whole batch of images at once. :func:`naive_conditionals` is the full-pass
scheme, kept to measure the difference.

Determinism: every message is float64, computed with elementwise operations and
reductions over ``K`` in a fixed order, with torch pinned to one thread; encoder and decoder
run the same operations on the same batch shapes, so their probabilities, and hence the
integer tables from :func:`entropy.pmf_rows_to_freqs`, agree bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch

import entropy

from ..determinism import fixed_threads
from .model import HCLT, VALUES

PRECISION = 16
#: images per rANS stream (the encoder keeps every table of a chunk until it is coded)
CHUNK = 256


class _PathState:
    """Messages of a batch of partially observed images, updated one pixel at a time."""

    def __init__(self, model: HCLT, batch: int):
        self.parent = model.tree.parent
        self.paths = [model.tree.path_to_root(v) for v in range(model.tree.size)]
        self.log_prior = torch.log(model.prior.detach().double())
        self.log_edges = torch.log(model.edges.detach().double())  # [v, h_parent, h_v]
        self.log_leaves = torch.log(model.leaves.detach().double())  # [v, h_v, x]
        self.leaves = torch.exp(self.log_leaves)
        d, k = model.tree.size, model.hidden
        self.lam = torch.zeros(batch, d, k, dtype=torch.float64)  # observed leaf factor (log)
        self.acc = torch.zeros(batch, d, k, dtype=torch.float64)  # sum of the children's messages (log)
        self.up = torch.zeros(batch, d, k, dtype=torch.float64)  # message to the parent (log), over h_parent

    def conditionals(self, v: int) -> torch.Tensor:
        """p(x_v = value | evidence) for every value, shape (batch, 256)."""
        path = self.paths[v][::-1]  # root ... v
        out = self.log_prior[None, :].expand(self.lam.shape[0], -1)
        for p, c in zip(path[:-1], path[1:]):
            a = out + self.lam[:, p] + self.acc[:, p] - self.up[:, c]
            out = torch.logsumexp(a[:, :, None] + self.log_edges[c][None], dim=1)
        w = out + self.acc[:, v]
        w = torch.exp(w - w.max(dim=1, keepdim=True).values)
        pmf = (w[:, :, None] * self.leaves[v][None]).sum(dim=1)
        return pmf / pmf.sum(dim=1, keepdim=True)

    def observe(self, v: int, values: torch.Tensor) -> None:
        self.lam[:, v] = self.log_leaves[v][:, values].T
        u = v
        while self.parent[u] >= 0:
            p = int(self.parent[u])
            new = torch.logsumexp(self.log_edges[u][None] + (self.lam[:, u] + self.acc[:, u])[:, None, :], dim=2)
            self.acc[:, p] += new - self.up[:, u]
            self.up[:, u] = new
            u = p


def encode_chunk(model: HCLT, images: np.ndarray) -> bytes:
    """One rANS stream for a batch of images (B x D uint8), pixels in raster order."""
    b, d = images.shape
    x = torch.from_numpy(images.astype(np.int64))
    freqs = np.empty((d, b, VALUES), dtype=np.uint16)  # max frequency 2**16 - 255 fits
    with fixed_threads(), torch.no_grad():
        state = _PathState(model, b)
        for v in range(d):
            freqs[v] = entropy.pmf_rows_to_freqs(state.conditionals(v).numpy(), PRECISION)
            state.observe(v, x[:, v])
    enc = entropy.RowEncoder(PRECISION)
    for v in range(d - 1, -1, -1):
        enc.push_reverse(images[:, v], freqs[v].astype(np.int32))
    return enc.finish()


def decode_chunk(model: HCLT, data: bytes, count: int) -> np.ndarray:
    """Inverse of :func:`encode_chunk`: (count x D) uint8."""
    d = model.tree.size
    out = np.empty((count, d), dtype=np.uint8)
    dec = entropy.RowDecoder(data, PRECISION)
    with fixed_threads(), torch.no_grad():
        state = _PathState(model, count)
        for v in range(d):
            f = entropy.pmf_rows_to_freqs(state.conditionals(v).numpy(), PRECISION)
            sym = dec.pop(f)
            out[:, v] = sym
            state.observe(v, torch.from_numpy(sym.astype(np.int64)))
    dec.finish()
    return out


def naive_conditionals(model: HCLT, image: np.ndarray, pixels: int | None = None) -> np.ndarray:
    """The same conditionals by a full upward pass per pixel and value: O(D * |circuit|) per
    pixel, for the first ``pixels`` pixels (default all). For measuring the speed-up of the
    path scheme, not for coding."""
    d = image.size
    x = torch.from_numpy(np.repeat(image.reshape(1, d).astype(np.int64), VALUES, axis=0))
    rows = []
    with torch.no_grad():
        for v in range(d if pixels is None else pixels):
            x[:, v] = torch.arange(VALUES)
            observed = torch.zeros(VALUES, d, dtype=torch.bool)
            observed[:, : v + 1] = True
            ll = model.log_likelihood(x, observed).double()
            p = torch.exp(ll - ll.max())
            rows.append((p / p.sum()).numpy())
            x[:, v] = int(image.reshape(-1)[v])
    return np.stack(rows)
