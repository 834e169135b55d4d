"""Hidden Chow-Liu trees (HCLT): a probabilistic circuit over image pixels.

Structure (Liu, Mandt & Van den Broeck, "Lossless Compression with Probabilistic Circuits",
ICLR 2022, Sec. 5; after Liu & Van den Broeck 2021): a Chow-Liu tree over the pixels, built
from pairwise mutual information on the training set, in which every pixel ``X_v`` gets a
hidden categorical parent ``H_v`` with ``K`` states. The hidden variables form the tree
(``p(H_v | H_parent(v))``), and each pixel hangs off its own hidden variable
(``p(X_v | H_v)``, a categorical over the 256 pixel values).

Inference is the usual upward pass on the tree, done level by level for all nodes of a level
at once, in the log domain with per-message normalisation, so nothing underflows.
Parameters are learnt by EM (:mod:`codec.pc.train`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

VALUES = 256


@dataclass(frozen=True)
class Tree:
    """A rooted tree over ``D`` nodes: parents, and the nodes of each depth level."""

    parent: np.ndarray  # int64 (D,), -1 for the root
    root: int

    @property
    def size(self) -> int:
        return int(self.parent.size)

    def levels(self) -> list[np.ndarray]:
        depth = self.depths()
        return [np.nonzero(depth == d)[0] for d in range(int(depth.max()) + 1)]

    def depths(self) -> np.ndarray:
        depth = np.full(self.size, -1, dtype=np.int64)
        depth[self.root] = 0
        order = self.bfs_order()
        for v in order[1:]:
            depth[v] = depth[self.parent[v]] + 1
        return depth

    def bfs_order(self) -> np.ndarray:
        children = self.children()
        order, head = [self.root], 0
        while head < len(order):
            order.extend(children[order[head]])
            head += 1
        if len(order) != self.size:
            raise ValueError("parent array does not describe one tree")
        return np.asarray(order, dtype=np.int64)

    def children(self) -> list[list[int]]:
        ch: list[list[int]] = [[] for _ in range(self.size)]
        for v, p in enumerate(self.parent):
            if p >= 0:
                ch[int(p)].append(v)
        return ch

    def path_to_root(self, v: int) -> list[int]:
        path = [v]
        while self.parent[path[-1]] >= 0:
            path.append(int(self.parent[path[-1]]))
        return path


def mutual_information(x: np.ndarray, bins: int = 4) -> np.ndarray:
    """Pairwise mutual information (nats) between the columns of ``x`` (N x D, uint8),
    on pixel values quantised to ``bins`` levels."""
    n, d = x.shape
    q = (x.astype(np.int64) * bins) // VALUES
    onehot = np.zeros((n, d * bins), dtype=np.float32)
    onehot[np.arange(n)[:, None], np.arange(d)[None, :] * bins + q] = 1.0
    joint = (onehot.T @ onehot).astype(np.float64) + 0.1  # smoothed pair counts
    joint = joint.reshape(d, bins, d, bins).transpose(0, 2, 1, 3)  # (d, d, bins, bins)
    joint /= joint.sum(axis=(2, 3), keepdims=True)
    pa = joint.sum(axis=3, keepdims=True)
    pb = joint.sum(axis=2, keepdims=True)
    mi = (joint * (np.log(joint) - np.log(pa) - np.log(pb))).sum(axis=(2, 3))
    np.fill_diagonal(mi, 0.0)
    return mi


def chow_liu_tree(mi: np.ndarray) -> Tree:
    """Maximum spanning tree of the MI graph (Prim), rooted at its centre (shortest depth)."""
    d = mi.shape[0]
    in_tree = np.zeros(d, dtype=bool)
    best = np.full(d, -np.inf)
    link = np.full(d, -1, dtype=np.int64)
    in_tree[0] = True
    best[:] = mi[0]
    link[:] = 0
    edges = []
    for _ in range(d - 1):
        cand = np.where(in_tree, -np.inf, best)
        v = int(np.argmax(cand))
        edges.append((int(link[v]), v))
        in_tree[v] = True
        better = (~in_tree) & (mi[v] > best)
        best[better] = mi[v][better]
        link[better] = v
    adj: list[list[int]] = [[] for _ in range(d)]
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)

    def farthest(src: int) -> tuple[int, np.ndarray]:
        dist = np.full(d, -1, dtype=np.int64)
        prev = np.full(d, -1, dtype=np.int64)
        dist[src] = 0
        queue = [src]
        for u in queue:
            for w in adj[u]:
                if dist[w] < 0:
                    dist[w] = dist[u] + 1
                    prev[w] = u
                    queue.append(w)
        return int(np.argmax(dist)), prev

    a, _ = farthest(0)
    b, prev = farthest(a)
    path = [b]
    while path[-1] != a:
        path.append(int(prev[path[-1]]))
    root = path[len(path) // 2]
    parent = np.full(d, -1, dtype=np.int64)
    seen = np.zeros(d, dtype=bool)
    seen[root] = True
    queue = [root]
    for u in queue:
        for w in adj[u]:
            if not seen[w]:
                seen[w] = True
                parent[w] = u
                queue.append(w)
    return Tree(parent, root)


class HCLT(torch.nn.Module):
    """Parameters of an HCLT: root prior, edge tables and pixel tables, as probabilities."""

    def __init__(self, tree: Tree, hidden: int, seed: int = 0):
        super().__init__()
        self.tree = tree
        self.hidden = hidden
        g = torch.Generator().manual_seed(seed)
        d, k = tree.size, hidden

        def rand_dist(*shape: int) -> torch.Tensor:
            t = torch.rand(*shape, generator=g, dtype=torch.float32) + 0.5
            return t / t.sum(-1, keepdim=True)

        self.prior = torch.nn.Parameter(rand_dist(k))
        self.edges = torch.nn.Parameter(rand_dist(d, k, k))  # edges[v, h_parent, h_v]
        self.leaves = torch.nn.Parameter(rand_dist(d, k, VALUES))  # leaves[v, h_v, x_v]
        self._levels = [torch.from_numpy(l) for l in tree.levels()]
        self._parent = torch.from_numpy(tree.parent)
        # for each level below the root: the position of every node's parent within the level above
        position = np.empty(tree.size, dtype=np.int64)
        for nodes in tree.levels():
            position[nodes] = np.arange(nodes.size)
        # the root level has no parents (its entry is never read)
        self._parent_pos = [torch.empty(0, dtype=torch.int64)] + [
            torch.from_numpy(position[tree.parent[l]]) for l in tree.levels()[1:]]

    @property
    def parameter_count(self) -> int:
        return self.count_parameters(self.tree.size, self.hidden)

    @staticmethod
    def count_parameters(pixels: int, hidden: int) -> int:
        """Free parameters: root prior, edge tables and pixel tables, each minus its sum-to-1."""
        d, k = pixels, hidden
        return (k - 1) + (d - 1) * k * (k - 1) + d * k * (VALUES - 1)

    def log_likelihood(self, x: torch.Tensor, observed: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x) per row of ``x`` (B x D, int64); where ``observed`` is False a pixel is
        summed out (its table contributes 1)."""
        log_leaves = torch.log(self.leaves)  # (D, K, V)
        d_idx = torch.arange(self.tree.size)
        lam = log_leaves.permute(0, 2, 1)[d_idx[None, :], x]  # (B, D, K)
        if observed is not None:
            lam = lam * observed[:, :, None].to(lam.dtype)
        msg = None  # messages of the level below, to their parents
        for level in range(len(self._levels) - 1, -1, -1):
            nodes = self._levels[level]
            ell = lam[:, nodes]  # (B, n, K)
            if msg is not None:
                ell = ell.index_add(1, self._parent_pos[level + 1], msg)
            if level == 0:
                break
            m = ell.max(dim=2, keepdim=True).values
            # message to the parent: log sum_h edges[v, hp, h] * exp(ell[h])
            msg = torch.log(torch.einsum("bnk,njk->bnj", torch.exp(ell - m), self.edges[nodes])) + m
        return torch.logsumexp(ell[:, 0] + torch.log(self.prior)[None, :], dim=1)

    def bits_per_dim(self, x: torch.Tensor, batch: int = 1000) -> float:
        with torch.no_grad():
            total = sum(float(self.log_likelihood(x[i:i + batch]).sum()) for i in range(0, x.shape[0], batch))
        return -total / (x.shape[0] * x.shape[1] * math.log(2))
