"""The rANS coder: int32 values and table ids in, bytes out, and back.

A thin facade over constriction's ``AnsCoder`` (32-bit words, 24-bit model precision).
The design is table-driven: each integer table becomes one constriction model, built once
and cached; symbols are grouped by table id (a stable order both sides derive from the
table ids alone) and each group is coded with one call, so the per-symbol work happens in
constriction's compiled loop rather than in Python.

Stream layout, in decode order (ANS is last-in-first-out, so the encoder pushes the
reverse):

1. the symbols of every table in increasing table id, each group in position order, with
   the escape symbol standing in for values outside the table;
2. for every escaped value, in position order: one direction bit (below/above the support);
3. for every escaped value: the number of hexadecimal digits of its distance (0..8);
4. all those digits, most significant first.

The distance ``d >= 0`` is how far the value lies beyond the support's edge, minus one.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

import numpy as np

from .tables import TableSet

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
MAX_DIGITS = 8  # 8 hex digits cover every distance an int32 can have


class RansError(ValueError):
    """Input the coder cannot take, or a stream that does not decode."""


class _AsRansError:
    """Turns whatever goes wrong inside constriction or numpy into :class:`RansError`.

    Constriction reports malformed data as ``ValueError`` (a stream that ends in a zero word,
    say) and a violated internal assertion as a Rust panic, which derives from
    ``BaseException``; numpy may fail on sizes and values a stream chose. Callers see one
    error type, whatever the bytes were.
    """

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None or isinstance(exc, (RansError, KeyboardInterrupt, SystemExit)):
            return  # nothing to convert (None: the exception, if any, goes on as it is)
        lines = str(exc).strip().splitlines()
        detail = lines[0][:160].rstrip(".") if lines else type(exc).__name__
        raise RansError(f"{self.what}: {detail}") from None


def _corrupt() -> _AsRansError:
    return _AsRansError("corrupt entropy-coded stream")


def _refused() -> _AsRansError:
    return _AsRansError("the entropy coder refused its input")


def _constriction() -> Any:
    import constriction

    return constriction


_uniform_cache: dict[int, Any] = {}
_model_cache: dict[tuple[int, str], "_Models"] = {}
_lock = threading.Lock()


def _uniform(n: int) -> Any:
    with _lock:
        model = _uniform_cache.get(n)
        if model is None:
            model = _constriction().stream.model.Categorical(np.full(n, 1.0 / n), perfect=True)
            _uniform_cache[n] = model
        return model


class _Models:
    """Constriction models of one TableSet, each built the first time a table is used.

    Building a model is the costly part of coding a few symbols under large tables (the
    weight tables reach thousands of entries), and a stream typically uses a handful of a
    set's tables.
    """

    def __init__(self, tables: TableSet) -> None:
        self._tables = tables
        self.built: list[Any] = [None] * tables.count  # read directly in the coding loops

    def build(self, t: int) -> Any:
        """The model of table ``t``, built now if it was not yet."""
        model = self.built[t]
        if model is None:
            total = float(1 << self._tables.precision)
            # frequencies / 2**precision are exact binary fractions, so the model constriction
            # builds is a deterministic function of the integers alone
            probs = self._tables.table(t).astype(np.float64) / total
            model = _constriction().stream.model.Categorical(probs, perfect=True)
            with _lock:
                if self.built[t] is None:
                    self.built[t] = model
                model = self.built[t]
        return model


def _models(tables: TableSet) -> _Models:
    """The (lazily built) constriction models of ``tables``, one set per distinct TableSet."""
    key = (id(tables), tables.digest())  # the digest guards against a reused id()
    with _lock:
        models = _model_cache.get(key)
        if models is None:
            models = _model_cache[key] = _Models(tables)
    return models


def _check(values: np.ndarray, table_ids: np.ndarray, tables: TableSet) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(values)
    t = np.asarray(table_ids)
    if v.shape != t.shape:
        raise RansError(f"values {v.shape} and table ids {t.shape} differ in shape")
    if v.size and not np.issubdtype(v.dtype, np.integer):
        raise RansError("values must be integers")
    v = v.ravel().astype(np.int64)
    if v.size and (v.min() < INT32_MIN or v.max() > INT32_MAX):
        raise RansError("values must fit in int32")
    t = _check_ids(t, tables)
    return v, t


def _check_ids(table_ids: np.ndarray, tables: TableSet) -> np.ndarray:
    t = np.asarray(table_ids).ravel()
    if t.size and (not np.issubdtype(t.dtype, np.integer) or t.min() < 0 or t.max() >= tables.count):
        raise RansError(f"table ids must lie in 0..{tables.count - 1}")
    return t.astype(np.uint8 if tables.count <= 256 else np.int32)


def _order(t: np.ndarray) -> np.ndarray:
    # radix sort for small integer types: linear time and stable
    return np.argsort(t, kind="stable")


def _runs(ts: np.ndarray) -> list[tuple[int, int, int]]:
    """(table, start, end) of each run of equal ids in sorted ``ts``, ascending."""
    if ts.size == 0:
        return []
    cuts = (np.flatnonzero(ts[1:] != ts[:-1]) + 1).tolist()
    starts, ends = [0] + cuts, cuts + [int(ts.size)]
    return list(zip(ts[starts].tolist(), starts, ends))


def _push_group(coder: Any, v: np.ndarray, t: np.ndarray, tables: TableSet) -> None:
    """Push one group (checked values and ids) so that it pops as described in the module doc."""
    order = _order(t)
    v, t = v[order], t[order]
    idx = v - tables.offsets[t]
    last = tables.lengths[t] - 1
    below = idx < 0
    above = idx >= last
    esc = below | above
    if np.any(esc):
        dist = np.where(below[esc], -idx[esc] - 1, idx[esc] - last[esc]).astype(np.uint64)
        ndig = np.zeros(dist.size, dtype=np.int32)
        rest = dist.copy()
        while np.any(rest):
            ndig += (rest > 0).astype(np.int32)
            rest >>= np.uint64(4)
        # digits, most significant first, escapes in order
        k = np.arange(MAX_DIGITS, dtype=np.int64)[None, :]
        shift = (ndig[:, None].astype(np.int64) - 1 - k).clip(0).astype(np.uint64) * np.uint64(4)
        digits = ((dist[:, None] >> shift) & np.uint64(15))[k < ndig[:, None]]
        if digits.size:
            coder.encode_reverse(digits.astype(np.int32), _uniform(16))
        coder.encode_reverse(ndig, _uniform(MAX_DIGITS + 1))
        coder.encode_reverse(below[esc].astype(np.int32), _uniform(2))
        idx = np.where(esc, last, idx)
    models = _models(tables)
    symbols = idx.astype(np.int32)
    built = models.built
    for table, a, b in reversed(_runs(t)):
        coder.encode_reverse(symbols[a:b], built[table] or models.build(table))


def _pop_group(coder: Any, t: np.ndarray, tables: TableSet) -> np.ndarray:
    """Inverse of :func:`_push_group` for checked ids; values in the ids' order, int64."""
    order = _order(t)
    ts = t[order]
    models = _models(tables)
    with _corrupt():
        idx = np.empty(t.size, dtype=np.int64)
        built, decode = models.built, coder.decode
        for table, a, b in _runs(ts):
            idx[a:b] = decode(built[table] or models.build(table), b - a)
        last = tables.lengths[ts] - 1
        esc = idx == last
        values = idx + tables.offsets[ts]
        n_esc = int(esc.sum())
        if n_esc:
            below = coder.decode(_uniform(2), n_esc).astype(bool)
            ndig = coder.decode(_uniform(MAX_DIGITS + 1), n_esc).astype(np.int64)
            total = int(ndig.sum())
            digits = coder.decode(_uniform(16), total).astype(np.uint64) if total else np.zeros(0, np.uint64)
            k = np.arange(MAX_DIGITS, dtype=np.int64)[None, :]
            mask = k < ndig[:, None]
            grid = np.zeros((n_esc, MAX_DIGITS), dtype=np.uint64)
            grid[mask] = digits
            dist = np.zeros(n_esc, dtype=np.uint64)
            for col in range(MAX_DIGITS):
                live = col < ndig
                dist[live] = (dist[live] << np.uint64(4)) | grid[live, col]
            edge_lo = tables.offsets[ts[esc]].astype(np.int64)
            edge_hi = edge_lo + last[esc] - 1
            d64 = dist.astype(np.int64)
            values[esc] = np.where(below, edge_lo - 1 - d64, edge_hi + 1 + d64)
            # values inside a table's support are int32 by construction; escapes may not be
            if values.min() < INT32_MIN or values.max() > INT32_MAX:
                raise RansError("corrupt stream: decoded value outside int32")
    out = np.empty(t.size, dtype=np.int64)
    out[order] = values
    return out


def encode(values: np.ndarray, table_ids: np.ndarray, tables: TableSet) -> bytes:
    """Code ``values[i]`` with table ``table_ids[i]``; returns the compressed bytes."""
    v, t = _check(values, table_ids, tables)
    if v.size == 0:
        return b""
    with _refused():
        coder = _constriction().stream.stack.AnsCoder()
        _push_group(coder, v, t, tables)
    return _stream_bytes(coder)


def decode(data: bytes, table_ids: np.ndarray, tables: TableSet) -> np.ndarray:
    """Inverse of :func:`encode`: the values, shaped like ``table_ids``, as int32.

    Raises :class:`RansError` when the stream does not decode to exactly what it holds.
    """
    shape = np.asarray(table_ids).shape
    t = _check_ids(table_ids, tables)
    if t.size == 0:
        if data:
            raise RansError("stream has data but no symbols are expected")
        return np.zeros(shape, dtype=np.int32)
    coder = _coder_for(data)
    values = _pop_group(coder, t, tables)
    _check_drained(coder)
    return values.astype(np.int32).reshape(shape)


def _stream_bytes(coder: Any) -> bytes:
    # may be empty: a few near-certain symbols fit in the coder's initial state
    with _refused():
        return bytes(coder.get_compressed().astype("<u4").tobytes())


def _check_drained(coder: Any) -> None:
    if not coder.is_empty():
        raise RansError("stream holds more data than the symbols it should contain")


def _coder_for(data: bytes) -> Any:
    """A coder that pops ``data``; constriction checks the words here (a stream that ends in a
    zero word is refused), so this too reports through :class:`RansError`."""
    if len(data) % 4:
        raise RansError("stream length is not a whole number of 32-bit words")
    with _corrupt():
        return _constriction().stream.stack.AnsCoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))


class GroupEncoder:
    """One stream of several groups of table-coded values, for coders that decode in steps
    (a group's tables depend on the groups before it, as in autoregressive latents).

    Each group is laid out exactly as a whole :func:`encode` stream is. Groups are pushed in
    the reverse of the order the decoder pops them.
    """

    def __init__(self, tables: TableSet):
        self.tables = tables
        self._coder = _constriction().stream.stack.AnsCoder()

    def push_reverse(self, values: np.ndarray, table_ids: np.ndarray) -> None:
        v, t = _check(values, table_ids, self.tables)
        if v.size:
            with _refused():
                _push_group(self._coder, v, t, self.tables)

    def finish(self) -> bytes:
        return _stream_bytes(self._coder)


class GroupDecoder:
    """Inverse of :class:`GroupEncoder`."""

    def __init__(self, data: bytes, tables: TableSet):
        self.tables = tables
        self._coder = _coder_for(data)

    def pop(self, table_ids: np.ndarray) -> np.ndarray:
        """The next group's values (int64), in the order of ``table_ids``."""
        t = _check_ids(table_ids, self.tables)
        if t.size == 0:
            return np.zeros(0, dtype=np.int64)
        return _pop_group(self._coder, t, self.tables)

    def finish(self) -> None:
        _check_drained(self._coder)


class RowEncoder:
    """Codes symbols that each have their own integer frequency row.

    For coders whose every symbol has a distinct distribution (lossless circuits, weight
    coders). Push groups in the reverse of the order the decoder will read them
    (:meth:`push_reverse` codes one group so that its first symbol is decoded first).
    Rows are integers; the probabilities handed to constriction are those integers over
    ``2**precision``, exact binary fractions, so both sides build identical models.
    """

    def __init__(self, precision: int):
        self.precision = precision
        self._coder = _constriction().stream.stack.AnsCoder()
        self._model = _constriction().stream.model.Categorical(perfect=False)

    def push_reverse(self, symbols: np.ndarray, freqs: np.ndarray) -> None:
        s = np.asarray(symbols).ravel()
        f = np.asarray(freqs)
        _check_rows(s.size, f, self.precision)
        if s.size == 0:
            return
        if s.min() < 0 or s.max() >= f.shape[1]:
            raise RansError("symbol outside its table")
        with _refused():
            self._coder.encode_reverse(s.astype(np.int32), self._model,
                                       f.astype(np.float64) / float(1 << self.precision))

    def finish(self) -> bytes:
        return _stream_bytes(self._coder)


class RowDecoder:
    """Inverse of :class:`RowEncoder`: pops groups in the order they were meant to be read."""

    def __init__(self, data: bytes, precision: int):
        self.precision = precision
        self._coder = _coder_for(data)
        self._model = _constriction().stream.model.Categorical(perfect=False)

    def pop(self, freqs: np.ndarray) -> np.ndarray:
        f = np.asarray(freqs)
        _check_rows(f.shape[0] if f.ndim == 2 else -1, f, self.precision)
        if f.shape[0] == 0:
            return np.zeros(0, dtype=np.int32)
        with _corrupt():
            out = self._coder.decode(self._model, f.astype(np.float64) / float(1 << self.precision))
            return np.asarray(out, dtype=np.int32)

    def finish(self) -> None:
        _check_drained(self._coder)


def encode_categorical(symbols: np.ndarray, freqs: np.ndarray, precision: int) -> bytes:
    """Code ``symbols[i]`` with its own frequency row ``freqs[i]`` (rows sum to 2**precision)."""
    enc = RowEncoder(precision)
    enc.push_reverse(symbols, freqs)
    return enc.finish()


def decode_categorical(data: bytes, freqs: np.ndarray, precision: int) -> np.ndarray:
    dec = RowDecoder(data, precision)
    f = np.asarray(freqs)
    _check_rows(f.shape[0] if f.ndim == 2 else -1, f, precision)
    if f.shape[0] == 0 and data:
        raise RansError("stream has data but no symbols are expected")
    out = dec.pop(f)
    dec.finish()
    return out


def _check_rows(n: int, f: np.ndarray, precision: int) -> None:
    if f.ndim != 2 or f.shape[0] != n:
        raise RansError("one frequency row per symbol is required")
    if not np.issubdtype(f.dtype, np.integer):
        raise RansError("frequencies must be integers")
    if f.size and (f.min() < 1 or np.any(f.sum(axis=1, dtype=np.int64) != (1 << precision))):
        raise RansError(f"every row must hold positive integers summing to 2**{precision}")
