import numpy as np
import pytest
from hypothesis import given
from hypothesis.extra import numpy as hnp
from hypothesis import strategies as st

from entropy import PRECISION, TableError, TableSet, gaussian_scale_table, gaussian_tables, pmf_to_freqs


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=300))
def test_pmf_to_freqs_sums_and_positivity(p):
    f = pmf_to_freqs(np.array(p))
    assert f.sum() == 1 << PRECISION
    assert f.min() >= 1
    assert f.dtype == np.int32


def test_pmf_to_freqs_is_deterministic_and_tracks_the_pmf():
    pmf = np.array([0.5, 0.25, 0.125, 0.125])
    f = pmf_to_freqs(pmf)
    assert np.array_equal(f, pmf_to_freqs(pmf.copy()))
    assert np.all(np.abs(f / 2**PRECISION - pmf) < 1e-3)


@pytest.mark.parametrize("bad", [np.array([]), np.array([np.nan, 1.0]), np.array([-1.0, 2.0])])
def test_pmf_to_freqs_rejects(bad):
    with pytest.raises(TableError):
        pmf_to_freqs(bad)


def test_tableset_validation():
    good = pmf_to_freqs(np.ones(4))
    TableSet.from_tables([good], [0])
    with pytest.raises(TableError):
        TableSet.from_tables([good[:-1]], [0])  # does not sum to 2**precision
    with pytest.raises(TableError):
        TableSet.from_tables([np.array([1 << PRECISION], np.int32)], [0])  # no room for an escape
    with pytest.raises(TableError):
        TableSet.from_tables([good], [0, 1])


def test_gaussian_tables_cover_their_scales():
    scales = gaussian_scale_table(0.11, 256, 64)
    t = gaussian_tables(scales)
    assert t.count == 64
    assert np.all(np.diff(t.lengths) >= 0)  # wider scales, wider tables
    # the centre of the narrowest table holds nearly all the mass
    centre = t.table(0)[-t.offsets[0]]
    assert centre / 2**PRECISION > 0.99
    assert t.digest() == gaussian_tables(scales).digest()


@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(1, 50)), elements=st.floats(0, 1e3)))
def test_row_quantisation_matches_the_single_table_function(rows):
    from entropy import pmf_rows_to_freqs

    out = pmf_rows_to_freqs(rows)
    for r, f in zip(rows, out):
        assert np.array_equal(f, pmf_to_freqs(r))
