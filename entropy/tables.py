"""Integer frequency tables: the only description of a distribution the coder sees.

Floating-point probabilities become integers in exactly one place, :func:`pmf_to_freqs`.
Everything downstream of it (the rANS coder, the escape code, the table hashes) works on
integers only, so an encoder and a decoder holding the same tables code identically.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

#: probabilities are integers out of 2**PRECISION
PRECISION = 16


class TableError(ValueError):
    """A table that cannot code: wrong sums, zero frequencies, bad shapes."""


def pmf_to_freqs(pmf: np.ndarray, precision: int = PRECISION) -> np.ndarray:
    """Quantise a probability vector to integer frequencies summing to ``2**precision``.

    Every entry gets at least 1, so every symbol stays codable; the rounding remainder goes to
    the most probable entry (the first one on ties). Deterministic for a given input array.
    """
    pmf = np.asarray(pmf, dtype=np.float64)
    n = pmf.size
    total = 1 << precision
    if n == 0 or n > total // 2:
        raise TableError(f"cannot build a table of {n} symbols at precision {precision}")
    if not np.all(np.isfinite(pmf)) or np.any(pmf < 0):
        raise TableError("probabilities must be finite and non-negative")
    s = pmf.sum()
    pmf = pmf / s if s > 0 else np.full(n, 1.0 / n)
    freqs = np.floor(pmf * (total - n)).astype(np.int64) + 1
    freqs[int(np.argmax(pmf))] += total - int(freqs.sum())
    return freqs.astype(np.int32)


def pmf_rows_to_freqs(pmf: np.ndarray, precision: int = PRECISION) -> np.ndarray:
    """:func:`pmf_to_freqs` applied to every row of a 2-D array, vectorised (same result)."""
    pmf = np.asarray(pmf, dtype=np.float64)
    if pmf.ndim != 2:
        raise TableError("expected a 2-D array of probability rows")
    m, n = pmf.shape
    total = 1 << precision
    if n == 0 or n > total // 2:
        raise TableError(f"cannot build a table of {n} symbols at precision {precision}")
    if not np.all(np.isfinite(pmf)) or np.any(pmf < 0):
        raise TableError("probabilities must be finite and non-negative")
    s = pmf.sum(axis=1, keepdims=True)
    pmf = np.where(s > 0, pmf / np.where(s > 0, s, 1.0), 1.0 / n)
    freqs = np.floor(pmf * (total - n)).astype(np.int64) + 1
    top = np.argmax(pmf, axis=1)
    freqs[np.arange(m), top] += total - freqs.sum(axis=1)
    return freqs.astype(np.int32)


@dataclass(frozen=True, eq=False)
class TableSet:
    """A set of integer tables, each covering ``offset .. offset + len - 2`` plus an escape.

    The last entry of every table is the escape symbol: a value outside the table's support
    is coded as the escape, followed by its distance from the support in a fixed-length
    uniform code (see :mod:`entropy.rans`), so every int32 value round-trips.

    ``freqs`` is the concatenation of all tables; table ``t`` is
    ``freqs[starts[t]:starts[t + 1]]``.
    """

    freqs: np.ndarray  # int32, flat
    starts: np.ndarray  # int64, len = tables + 1
    offsets: np.ndarray  # int32, value coded by the first entry of each table
    precision: int = PRECISION

    def __post_init__(self) -> None:
        freqs = np.ascontiguousarray(self.freqs, dtype=np.int32)
        starts = np.ascontiguousarray(self.starts, dtype=np.int64)
        offsets = np.ascontiguousarray(self.offsets, dtype=np.int32)
        object.__setattr__(self, "freqs", freqs)
        object.__setattr__(self, "starts", starts)
        object.__setattr__(self, "offsets", offsets)
        if starts.ndim != 1 or starts.size < 2 or starts[0] != 0 or starts[-1] != freqs.size:
            raise TableError("table starts do not cover the frequency array")
        lengths = np.diff(starts)
        if np.any(lengths < 2):
            raise TableError("every table needs at least one symbol and the escape")
        if offsets.size != lengths.size:
            raise TableError("one offset per table is required")
        if np.any(offsets.astype(np.int64) + lengths - 2 > np.iinfo(np.int32).max):
            raise TableError("every value a table codes directly must fit in int32")
        if np.any(freqs < 1):
            raise TableError("every frequency must be at least 1")
        sums = np.add.reduceat(freqs.astype(np.int64), starts[:-1])
        if np.any(sums != (1 << self.precision)):
            raise TableError(f"every table must sum to 2**{self.precision}")

    @property
    def count(self) -> int:
        return int(self.starts.size - 1)

    @cached_property
    def lengths(self) -> np.ndarray:
        return np.diff(self.starts)

    def table(self, t: int) -> np.ndarray:
        return self.freqs[self.starts[t]:self.starts[t + 1]]

    @classmethod
    def from_tables(cls, tables: list[np.ndarray], offsets: list[int] | np.ndarray,
                    precision: int = PRECISION) -> "TableSet":
        starts = np.zeros(len(tables) + 1, dtype=np.int64)
        starts[1:] = np.cumsum([len(t) for t in tables])
        flat = np.concatenate(tables) if tables else np.zeros(0, np.int32)
        return cls(flat, starts, np.asarray(offsets, dtype=np.int32), precision)

    def digest(self) -> str:
        """SHA-256 over the exact integers; a bitstream can name the tables it needs."""
        cached = self.__dict__.get("_digest")
        if cached is not None:
            return cached
        h = hashlib.sha256()
        h.update(np.int64(self.precision).tobytes())
        for arr in (self.freqs, self.starts, self.offsets):
            h.update(np.ascontiguousarray(arr).astype("<i8").tobytes())
        object.__setattr__(self, "_digest", h.hexdigest())
        return self.__dict__["_digest"]

    def cost_bits(self, values: np.ndarray, table_ids: np.ndarray) -> float:
        """Ideal code length in bits (without the escape payloads' exact rounding)."""
        values = np.asarray(values, dtype=np.int64).ravel()
        table_ids = np.asarray(table_ids, dtype=np.int64).ravel()
        idx = values - self.offsets[table_ids]
        lengths = self.lengths[table_ids]
        esc = (idx < 0) | (idx >= lengths - 1)
        idx = np.where(esc, lengths - 1, idx)
        f = self.freqs[self.starts[table_ids] + idx].astype(np.float64)
        return float(np.sum(self.precision - np.log2(f)))


def gaussian_scale_table(scale_min: float, scale_max: float, levels: int) -> np.ndarray:
    """Log-spaced scales; a scale ``s`` codes with the first table whose scale is >= s."""
    # math.exp (the C library's), not np.exp: numpy picks a SIMD exp by CPU (AVX-512 or
    # not), whose last bits differ, and tables built at run time must not depend on the CPU
    return np.array([math.exp(float(v)) for v in np.linspace(math.log(scale_min), math.log(scale_max), levels)])


def gaussian_tables(scales: np.ndarray, tail_mass: float = 1e-9,
                    precision: int = PRECISION) -> TableSet:
    """Discretised zero-mean Gaussians, one table per scale, for ``round(y - mu)``.

    The support of each table spans the values whose two-sided tail is above ``tail_mass``;
    everything further out is escaped.
    """
    tables, offsets = [], []
    sqrt2 = math.sqrt(2.0)
    # the quantile of a tail_mass/2 one-sided tail, found once by bisection on erfc
    lo, hi = 0.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if 0.5 * math.erfc(mid / sqrt2) > tail_mass / 2:
            lo = mid
        else:
            hi = mid
    z = hi
    max_radius = ((1 << precision) // 2 - 2) // 2
    for s in scales:
        radius = min(max_radius, max(1, int(math.ceil(z * float(s)))))
        k = np.arange(-radius, radius + 1, dtype=np.float64)
        upper = np.array([0.5 * math.erfc(-(v + 0.5) / (float(s) * sqrt2)) for v in k])
        lower = np.array([0.5 * math.erfc(-(v - 0.5) / (float(s) * sqrt2)) for v in k])
        pmf = upper - lower
        escape = max(0.0, 1.0 - float(pmf.sum()))
        tables.append(pmf_to_freqs(np.append(pmf, escape), precision))
        offsets.append(-radius)
    return TableSet.from_tables(tables, offsets, precision)


def laplace_tables(scales: np.ndarray, shifts: int, tail_mass: float = 1e-9,
                   precision: int = PRECISION) -> TableSet:
    """Discretised Laplace distributions over the integers, for integer values with a
    fractional mean: table ``s * shifts + f`` is the Laplace of scale ``scales[s]`` centred at
    ``f / shifts`` (``0 <= f < shifts``), coding ``value - floor(mean)``.

    The support spans the values whose two-sided tail is above ``tail_mass``; everything
    further out is escaped.
    """
    tables, offsets = [], []
    max_radius = ((1 << precision) // 2 - 4) // 2
    for b in np.asarray(scales, dtype=np.float64):
        radius = min(max_radius, max(1, int(math.ceil(float(b) * math.log(1.0 / tail_mass)))))
        for f in range(shifts):
            mu = f / shifts
            k = np.arange(-radius, radius + 2, dtype=np.float64)

            def cdf(x: np.ndarray) -> np.ndarray:
                # scalar math.exp, for the reason given in gaussian_scale_table
                z = (x - mu) / float(b)
                return np.array([0.5 * math.exp(v) if v < 0 else 1.0 - 0.5 * math.exp(-v) for v in z.tolist()])

            pmf = cdf(k + 0.5) - cdf(k - 0.5)
            escape = max(0.0, 1.0 - float(pmf.sum()))
            tables.append(pmf_to_freqs(np.append(pmf, escape), precision))
            offsets.append(-radius)
    return TableSet.from_tables(tables, offsets, precision)
