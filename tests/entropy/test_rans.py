import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import entropy
from entropy import RansError, TableSet, gaussian_scale_table, gaussian_tables, pmf_to_freqs

INT32 = st.integers(-(2**31), 2**31 - 1)


@st.composite
def table_sets(draw):
    n = draw(st.integers(1, 6))
    tables, offsets = [], []
    for _ in range(n):
        size = draw(st.integers(1, 40))
        pmf = draw(hnp.arrays(np.float64, size + 1, elements=st.floats(0, 1)))
        tables.append(pmf_to_freqs(pmf))
        offsets.append(draw(st.integers(-1000, 1000)))
    return TableSet.from_tables(tables, offsets)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), tables=table_sets())
def test_round_trip_arbitrary_int32(data, tables):
    n = data.draw(st.integers(0, 200))
    values = np.array(data.draw(st.lists(st.one_of(INT32, st.integers(-50, 50)), min_size=n, max_size=n)),
                      dtype=np.int32)
    ids = np.array(data.draw(st.lists(st.integers(0, tables.count - 1), min_size=n, max_size=n)), dtype=np.int64)
    blob = entropy.encode(values, ids, tables)
    assert np.array_equal(entropy.decode(blob, ids, tables), values)


def test_empty_input():
    t = TableSet.from_tables([pmf_to_freqs(np.ones(3))], [0])
    assert entropy.encode(np.zeros(0, np.int32), np.zeros(0, np.int64), t) == b""
    out = entropy.decode(b"", np.zeros((0, 3), np.int64), t)
    assert out.shape == (0, 3)


def test_extremes_and_shapes():
    t = gaussian_tables(gaussian_scale_table(0.11, 256, 64))
    v = np.array([[-(2**31), 2**31 - 1], [0, -1], [1, 123456789]], dtype=np.int32)
    ids = np.array([[0, 63], [0, 5], [63, 0]])
    out = entropy.decode(entropy.encode(v, ids, t), ids, t)
    assert out.shape == v.shape and np.array_equal(out, v)


def test_rate_matches_the_table_cost():
    rng = np.random.default_rng(1)
    scales = gaussian_scale_table(0.11, 256, 64)
    t = gaussian_tables(scales)
    s = np.exp(rng.uniform(np.log(0.2), np.log(30), 50_000))
    v = np.round(rng.normal(0, s)).astype(np.int32)
    ids = np.searchsorted(scales, s)
    blob = entropy.encode(v, ids, t)
    assert len(blob) * 8 < t.cost_bits(v, ids) * 1.002 + 64
    assert np.array_equal(entropy.decode(blob, ids, t), v)


def test_rejects_bad_arguments():
    t = TableSet.from_tables([pmf_to_freqs(np.ones(3))], [0])
    with pytest.raises(RansError):
        entropy.encode(np.array([1.5]), np.array([0]), t)
    with pytest.raises(RansError):
        entropy.encode(np.array([1]), np.array([1]), t)
    with pytest.raises(RansError):
        entropy.encode(np.array([2**40]), np.array([0]), t)
    with pytest.raises(RansError):
        entropy.decode(b"abc", np.array([0]), t)


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=64), st.integers(0, 40))
def test_garbage_streams_raise_or_decode(blob, n):
    t = gaussian_tables(gaussian_scale_table(0.11, 256, 8))
    ids = np.arange(n) % t.count
    try:
        out = entropy.decode(blob, ids, t)
    except RansError:
        return
    assert out.shape == (n,) and out.dtype == np.int32


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_categorical_round_trip(data):
    n = data.draw(st.integers(0, 100))
    k = data.draw(st.integers(2, 20))
    rows = [pmf_to_freqs(data.draw(hnp.arrays(np.float64, k, elements=st.floats(0, 1)))) for _ in range(n)]
    freqs = np.array(rows, dtype=np.int32).reshape(n, k)
    symbols = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)), dtype=np.int32)
    blob = entropy.encode_categorical(symbols, freqs, entropy.PRECISION)
    assert np.array_equal(entropy.decode_categorical(blob, freqs, entropy.PRECISION), symbols)


def test_categorical_rejects_bad_rows():
    with pytest.raises(RansError):
        entropy.encode_categorical(np.array([0]), np.array([[1, 2]]), 16)
    with pytest.raises(RansError):
        entropy.encode_categorical(np.array([2]), np.array([[1 << 15, 1 << 15]]), 16)


@settings(max_examples=80, deadline=None)
@given(data=st.data(), tables=table_sets())
def test_groups_round_trip_in_order(data, tables):
    groups = []
    for _ in range(data.draw(st.integers(0, 6))):
        n = data.draw(st.integers(0, 40))
        values = np.array(data.draw(st.lists(st.one_of(INT32, st.integers(-50, 50)), min_size=n, max_size=n)),
                          dtype=np.int64)
        ids = np.array(data.draw(st.lists(st.integers(0, tables.count - 1), min_size=n, max_size=n)), dtype=np.int64)
        groups.append((values, ids))
    enc = entropy.GroupEncoder(tables)
    for values, ids in reversed(groups):
        enc.push_reverse(values, ids)
    blob = enc.finish()
    dec = entropy.GroupDecoder(blob, tables)
    for values, ids in groups:
        assert np.array_equal(dec.pop(ids), values)
    dec.finish()
    if len(groups) == 1:  # one group is laid out exactly as a whole encode() stream
        assert blob == entropy.encode(groups[0][0], groups[0][1], tables)


def test_group_decoder_notices_left_over_data():
    t = TableSet.from_tables([pmf_to_freqs(np.array([0.5, 0.3, 0.2]))], [0])
    enc = entropy.GroupEncoder(t)
    enc.push_reverse(np.arange(50) % 3, np.zeros(50, np.int64))
    enc.push_reverse(np.arange(50) % 2, np.zeros(50, np.int64))
    dec = entropy.GroupDecoder(enc.finish(), t)
    assert np.array_equal(dec.pop(np.zeros(50, np.int64)), np.arange(50) % 2)
    with pytest.raises(RansError):
        dec.finish()


def _zero_word_streams(t):
    """Streams that end in a zero 32-bit word, which constriction refuses as it builds its coder:
    the word alone, and a real stream with one appended."""
    real = entropy.encode(np.arange(40) % 3, np.zeros(40, np.int64), t)
    return [b"\0" * 4, real + b"\0" * 4, b"\x01\0\0\0" + b"\0" * 4]


def test_a_stream_ending_in_a_zero_word_is_a_rans_error_at_every_entry():
    t = TableSet.from_tables([pmf_to_freqs(np.array([0.5, 0.3, 0.2]))], [0])
    rows = np.full((40, 4), 1 << (entropy.PRECISION - 2), np.int64)
    for data in _zero_word_streams(t):
        for decode in (lambda: entropy.decode(data, np.zeros(40, np.int64), t),
                       lambda: entropy.GroupDecoder(data, t).pop(np.zeros(40, np.int64)),
                       lambda: entropy.RowDecoder(data, entropy.PRECISION).pop(rows),
                       lambda: entropy.decode_categorical(data, rows, entropy.PRECISION)):
            with pytest.raises(RansError, match="zero word"):
                decode()


def test_every_failure_inside_the_coder_becomes_a_rans_error():
    from entropy.rans import _corrupt

    class Panic(BaseException):  # how a Rust panic reaches Python
        pass

    for exc in (ValueError("bad\nsecond line"), Panic("assertion failed"), MemoryError(), FloatingPointError()):
        with pytest.raises(RansError) as info:
            with _corrupt():
                raise exc
        assert "\n" not in str(info.value)
    with pytest.raises(KeyboardInterrupt):  # an interrupt is not a corrupt stream
        with _corrupt():
            raise KeyboardInterrupt
