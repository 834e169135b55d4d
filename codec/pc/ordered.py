"""Float64 sums and products in one fixed order: the same bits on every machine.

IEEE 754 defines every single addition, multiplication and division as the exact result
rounded once, so a computation made only of such operations, in an order the program fixes,
gives the same float64 bits on any CPU. Matrix products and reductions through BLAS (or
numpy's ``sum``) do not fix their order: the kernel the library picks for the CPU (SSE3,
AVX2 with fused multiply-adds, AVX-512), its blocking and its thread split decide it, and the
last bits differ between machines. The functions here spell the order out with element-wise
numpy operations, each one correctly rounded and never fused.
"""

from __future__ import annotations

import numpy as np


def row_sum(x: np.ndarray) -> np.ndarray:
    """Sums of the rows of ``x`` (B, N) in one fixed order: column ``j`` is added to column
    ``j + h`` (``h = N // 2``) for ``j < h``, an odd last column joins the halved array at
    its end, and so on until one column is left."""
    while x.shape[1] > 1:
        n = x.shape[1]
        h = n // 2
        s = x[:, :h] + x[:, h:2 * h]
        x = s if n == 2 * h else np.concatenate([s, x[:, 2 * h:]], axis=1)
    return x[:, 0]


def dot(a: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``a @ m`` for ``a`` (B, K) and ``m`` (K, N): each output is
    ``((a[:, 0] * m[0] + a[:, 1] * m[1]) + a[:, 2] * m[2]) + ...``, in order of ``k``, every
    product and every sum rounded once."""
    k, n = m.shape
    if n <= 64:  # narrow tables: all products in one operation, then the sums in order
        prods = np.ascontiguousarray(a.T)[:, :, None] * m[:, None, :]  # (K, B, N)
        out = prods[0]
        for i in range(1, k):
            out += prods[i]
        return out
    out = a[:, :1] * m[0]
    tmp = np.empty_like(out)
    for i in range(1, k):
        np.multiply(a[:, i:i + 1], m[i], out=tmp)
        out += tmp
    return out
