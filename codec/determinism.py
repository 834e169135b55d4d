"""Scoped settings that make float computations repeat exactly between encoder and decoder."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

#: the thread count every entropy-parameter computation runs with
DECODE_THREADS = 1


@contextlib.contextmanager
def fixed_threads(n: int = DECODE_THREADS) -> Iterator[None]:
    """Run torch with exactly ``n`` intra-op threads, restoring the caller's setting.

    A convolution's or reduction's float sums can change with how the work is split among
    threads; pinning the count makes them repeat on the same machine and torch build.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def fixed_blas_threads(n: int = DECODE_THREADS) -> Iterator[None]:
    """Run numpy's BLAS with exactly ``n`` threads (matrix products split the same way)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="blas"):
        yield
