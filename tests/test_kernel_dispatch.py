"""Kernel dispatch helpers: memoised typing, one-layout compilation, the thread pool, and the
C-typed column view (``aqforecast.kernels.layout`` and ``.threads``)."""

import numba
import numpy as np
import pytest
from numba import njit

from aqforecast.kernels.layout import OneLayout, contiguous_column, fast_typeof
from aqforecast.kernels.threads import parallel_kernel


def _values():
    base = np.arange(24.0).reshape(4, 6)
    ro = np.zeros(3)
    ro.setflags(write=False)
    unaligned = np.frombuffer(bytearray(8 * 5 + 1), dtype=np.uint8)[1:].view(np.float64)
    return [np.zeros(3), base, base.T, base[:, ::2], base[1:], np.zeros(5, np.float32),
            np.zeros((2, 3), np.int8), np.zeros((1, 1)), np.zeros(0), np.zeros(()), ro,
            unaligned, 1, -7, 2**62, 1.5, True, np.float64(2.0), np.int64(3), np.int32(4),
            np.float32(1.0), np.bool_(False)]


def test_fast_typeof_equals_numba_typeof():
    """The memoised types are numba's, for every layout, dtype, flag and scalar kind (asked
    twice: the second answer comes from the memo)."""
    for v in _values():
        for _ in range(2):
            assert fast_typeof(v) == numba.typeof(v), v


@njit(cache=False)
def _row_sums(a, out):
    for i in range(a.shape[0]):
        s = 0.0
        for j in range(a.shape[1]):
            s += a[i, j]
        out[i] = s


def test_one_layout_compiles_once_for_every_view():
    a = np.random.default_rng(0).uniform(size=(5, 7))
    dispatcher = njit(cache=False)(_row_sums.py_func)
    kernel = OneLayout(dispatcher)
    for view in (a, np.asfortranarray(a), a[:, ::-1], a.T.copy().T):
        out = np.empty(view.shape[0])
        kernel(view, out)
        np.testing.assert_allclose(out, view.sum(axis=1), rtol=1e-14)
    assert len(dispatcher.signatures) == 1
    exact = OneLayout(njit(cache=False)(_row_sums.py_func), exact=True)
    for view in (a, np.asfortranarray(a)):
        exact(view, np.empty(5))
    assert len(exact.dispatcher.signatures) == 2
    # exact, but the first argument typed 'A' always: one specialisation for C, F and strided
    loose = OneLayout(njit(cache=False)(_row_sums.py_func), exact=True, loose=("a",))
    for view in (a, np.asfortranarray(a), a[:, ::-1]):
        out = np.empty(view.shape[0])
        loose(view, out)
        np.testing.assert_allclose(out, view.sum(axis=1), rtol=1e-14)
    assert len(loose.dispatcher.signatures) == 1
    with pytest.raises(ValueError, match="no parameters"):
        OneLayout(_row_sums, exact=True, loose=("frac",))
    with pytest.raises(TypeError, match="takes 2 arguments, 1 given"):
        kernel(a)


@parallel_kernel(lambda a, out: a.shape[0])
@njit(cache=False, nogil=True)
def _scaled_rows(start, stop, a, out):
    for i in range(start, stop):
        for j in range(a.shape[1]):
            out[i, j] = 2.0 * a[i, j] + i


@pytest.mark.parametrize("threads", [1, 2])
def test_parallel_kernel_covers_every_row_once(threads):
    """Chunks of rows run on the pool write disjoint rows: every row exactly once, whatever
    the number of threads (odd row counts, fewer rows than chunks)."""
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        for n in (1, 3, 17, 101):
            a = np.arange(n * 3.0).reshape(n, 3)
            out = np.full_like(a, np.nan)
            _scaled_rows(a, out)
            np.testing.assert_array_equal(out, 2.0 * a + np.arange(n)[:, None])
    finally:
        numba.set_num_threads(previous)


@njit(cache=False)
def _fill_column(v, i, value):
    col = contiguous_column(v, i)
    for l in range(col.shape[0]):
        col[l] = value + l
    return col.shape[0]


def test_contiguous_column_aliases_the_view():
    base = np.zeros((6, 10))
    v = base.T  # (10, 6): rows adjacent in memory
    assert v.strides[0] == 8
    assert _fill_column(v, 2, 100.0) == 10
    np.testing.assert_array_equal(base[2], 100.0 + np.arange(10))
    assert np.count_nonzero(base) == 10
