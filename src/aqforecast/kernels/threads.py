"""Thread-parallel loops over independent work items for large kernel bodies (numba ``nogil``).

numba's ``prange`` compiles its loop body into a separate parallel function (a "gufunc") and
links the machine code of every function the body calls into it once more; for a sweep kernel
whose body calls the Walcek tile update and the tag update this doubled the compile time (about
5 s per kernel). Kernels with large bodies are therefore written as plain ``nogil`` functions of
a range of work items, ``kernel(start, stop, *args)``, and :func:`parallel_range` runs chunks of
the range on a pool of Python threads (numba releases the GIL while a ``nogil`` function runs).
The thread count follows ``numba.get_num_threads()`` (``NUMBA_NUM_THREADS``,
``numba.set_num_threads``), so the same settings govern these kernels and the ``prange`` ones.
Chunks are independent, so results do not depend on the thread count.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import numba

from .layout import OneLayout

__all__ = ["parallel_range", "parallel_kernel"]

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
#: Chunks per thread: more chunks than threads balance uneven work items.
CHUNKS_PER_THREAD = 4


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=numba.config.NUMBA_NUM_THREADS,
                                       thread_name_prefix="aqforecast-kernel")
        return _POOL


def parallel_range(kernel: OneLayout, n: int, *args) -> None:
    """Run ``kernel(start, stop, *args)`` over the work items ``0 .. n-1`` on
    ``numba.get_num_threads()`` threads (chunks of consecutive items, taken in turn by the
    calling thread and the pool threads until none is left). ``kernel`` must be a
    :class:`OneLayout`-wrapped ``nogil`` numba function whose work items write disjoint
    data."""
    if n <= 0:
        return
    run = kernel.prepare(0, n, *args)
    nthreads = min(numba.get_num_threads(), n)
    if nthreads <= 1:
        run(0, n, *args)
        return
    nchunk = min(n, nthreads * CHUNKS_PER_THREAD)
    bounds = [(c * n) // nchunk for c in range(nchunk + 1)]
    # dynamic scheduling: the calling thread and nthreads - 1 pool threads take the next chunk
    # until none is left (itertools.count's next() is atomic under the GIL). One task per extra
    # thread instead of one per chunk: the model's sweeps make ~400 calls of ~20 tiles per
    # simulated hour, and waking a pool thread per chunk cost as much as the chunk
    chunks = itertools.count()

    def work():
        while (c := next(chunks)) < nchunk:
            run(bounds[c], bounds[c + 1], *args)

    pool = _pool()
    futures = [pool.submit(work) for _ in range(nthreads - 1)]
    try:
        work()
    finally:  # never return (or raise) while a pool thread still works on the arrays
        for f in futures:
            f.exception()
    for f in futures:
        f.result()


def parallel_kernel(count, exact=False):
    """Decorator for a ``nogil`` numba kernel ``kernel(start, stop, *args)`` that processes the
    work items ``start .. stop-1``: returns ``f(*args)``, which runs all ``count(*args)`` items
    with :func:`parallel_range`. Array arguments share one specialisation for every layout
    (:class:`~aqforecast.kernels.layout.OneLayout`) unless ``exact``. The undecorated kernel is
    ``f.kernel.dispatcher``."""

    def wrap(dispatcher):
        one = OneLayout(dispatcher, exact=exact)

        def run(*args):
            parallel_range(one, count(*args), *args)

        run.kernel = one
        for attr in ("__name__", "__qualname__", "__module__", "__doc__"):
            setattr(run, attr, getattr(dispatcher.py_func, attr))
        return run

    return wrap
