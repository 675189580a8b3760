"""One compiled specialisation per kernel for every array layout (numba dispatch helper).

numba compiles a kernel once per distinct argument *type*, and an array's type includes its
layout: C-contiguous ('C'), Fortran ('F') or any strides ('A'). A sweep kernel called on an x
view (contiguous), a y view (sliced) and a z view (transposed) is therefore compiled three times,
which for a large ``prange`` kernel costs seconds each. :class:`OneLayout` compiles the kernel
for layout 'A' only and lets numba convert C/F arrays to it (a safe conversion), so one
specialisation serves every view; it costs one memoised type lookup per argument and call
(:func:`fast_typeof`).
"""

from __future__ import annotations

import inspect
import threading

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.extending import intrinsic

__all__ = ["OneLayout", "any_layout", "contiguous_column", "contiguous_row", "prefetch_rows",
           "prefetch_rows_call"]


def _array_key(a):
    """What numba's type of an ndarray depends on: dtype, ndim, layout, writeable, aligned
    (as ``numba.typeof`` maps them)."""
    f = a.flags
    layout = "C" if f.c_contiguous else ("F" if f.f_contiguous else "A")
    return (a.dtype, a.ndim, layout, f.writeable, f.aligned)


_TYPES = {}
_SCALARS = (bool, float, np.bool_, np.integer, np.floating)  # fixed-width: type alone decides


def fast_typeof(a):
    """``numba.typeof(a)``, memoised for ndarrays and plain scalars (numba.typeof costs ~15 us
    per array; the model's small per-level kernel calls pass ~14 of them)."""
    if type(a) is np.ndarray:
        key = _array_key(a)
    elif isinstance(a, _SCALARS) or (type(a) is int and -2**63 <= a < 2**63):
        key = type(a)
    else:
        return numba.typeof(a)
    tp = _TYPES.get(key)
    if tp is None:
        tp = _TYPES[key] = numba.typeof(a)
    return tp


_ANY = {}


def any_layout(tp):
    """The numba type ``tp`` with array layout 'A' (non-array types unchanged); memoised
    (building a numba type costs ~16 us, and the model makes ~1 500 such calls per simulated
    hour)."""
    out = _ANY.get(tp)
    if out is None:
        out = tp.copy(layout="A") if isinstance(tp, types.Array) and tp.layout != "A" else tp
        _ANY[tp] = out
    return out


class OneLayout:
    """Call ``dispatcher`` (an ``njit`` function) with all its arrays typed as layout 'A'.

    The first call with a new set of dtypes and dimensions compiles (or loads from numba's
    cache) the 'A' specialisation; every call then runs it, whatever the arrays' strides.
    ``exact=True`` keeps the arguments' own layouts (for kernels that are always given
    contiguous arrays and are only wrapped for :meth:`prepare`), except for the parameters
    named in ``loose``, typed 'A' always: one specialisation for an argument that arrives
    sometimes contiguous and sometimes strided, where the kernel does not need its layout.
    """

    def __init__(self, dispatcher, exact=False, loose=()):
        self.dispatcher = dispatcher
        params = inspect.signature(dispatcher.py_func).parameters.values()
        names = [p.name for p in params]
        unknown = set(loose) - set(names)
        if unknown:
            raise ValueError(f"{dispatcher.__name__} has no parameters {sorted(unknown)}")
        self._loose = tuple(names.index(n) for n in loose)
        self._convert = (lambda tp: tp) if exact else any_layout
        # parameters left to their defaults are typed as numba does for a call that omits them
        self._defaults = tuple(None if p.default is p.empty else types.Omitted(p.default)
                               for p in params)
        self._signatures = set()
        self._lock = threading.Lock()
        self.__doc__ = dispatcher.__doc__
        self.__name__ = dispatcher.__name__

    def signature(self, *args) -> tuple:
        """The numba types of the specialisation that ``args`` call."""
        sig = tuple(self._convert(fast_typeof(a)) for a in args) + self._defaults[len(args):]
        if self._loose:
            sig = tuple(any_layout(tp) if i in self._loose else tp for i, tp in enumerate(sig))
        return sig

    def prepare(self, *args):
        """Compile (or load) the specialisation for ``args`` if needed; returns the dispatcher,
        which then runs it for these argument types from any thread."""
        sig = self.signature(*args)
        if sig not in self._signatures:
            if None in sig:
                raise TypeError(f"{self.__name__}() takes {len(self._defaults)} arguments, "
                                f"{len(args)} given")
            with self._lock:
                d = self.dispatcher
                d.disable_compile(False)
                try:
                    d.compile(sig)
                finally:
                    if d.signatures:  # (numba refuses to disable with none compiled)
                        d.disable_compile(True)
                self._signatures.add(sig)
        return self.dispatcher

    def __call__(self, *args):
        return self.prepare(*args)(*args)


@intrinsic
def _element_pointer(typingctx, like, address):
    """The integer ``address`` as a pointer to elements of the array ``like``'s dtype (for
    :func:`numba.carray`)."""
    ptr = types.CPointer(like.dtype)
    sig = ptr(like, types.intp)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[1], context.get_value_type(ptr))

    return sig, codegen


@numba.njit(cache=True, inline="always")
def contiguous_column(v, i):
    """Column ``v[:, i]`` of a 2-D view whose rows are adjacent (``v.strides[0] == v.itemsize``;
    the caller checks; float64 or float32) as a 1-D array that numba types C-contiguous.

    numba types any strided view as layout 'A', so loops over such a column use the run-time
    stride and LLVM does not vectorise them (or uses gathers); the same memory typed 'C' gives
    plain vector loads and stores. The result aliases ``v``, which must outlive it.
    """
    return numba.carray(_element_pointer(v, v.ctypes.data + i * v.strides[1]), v.shape[0])


@numba.njit(cache=True, inline="always")
def contiguous_row(v):
    """The 1-D view ``v`` whose elements are adjacent (``v.strides[0] == v.itemsize``; the
    caller checks) typed C-contiguous, so loops over it vectorise (see
    :func:`contiguous_column`). The result aliases ``v``."""
    return numba.carray(_element_pointer(v, v.ctypes.data), v.shape[0])


@intrinsic
def _prefetch(typingctx, address):
    """Hint the CPU to bring the cache line at the integer ``address`` into L2 for reading
    (LLVM ``llvm.prefetch``, locality 1: x86 ``prefetcht2``); never faults, no effect on results."""
    sig = types.void(types.intp)

    def codegen(context, builder, signature, args):
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch")
        builder.call(fn, [builder.inttoptr(args[0], i8p), ir.Constant(i32, 0), ir.Constant(i32, 1),
                          ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True, inline="always")
def prefetch_rows(v, step, nsteps):
    """Prefetch share ``step`` of ``nsteps`` of the rows of the 2-D view ``v`` (whole rows, every
    64-byte line of each) into L2.

    For software pipelining: a tiled kernel calls it once per step of its compute loop with the
    next tile's input, so that the next tile's data arrive while this one computes (the hardware
    prefetchers do not follow the strided rows of a tile, and issuing all of a tile's prefetches
    at once only waits on the line-fill buffers). An empty view prefetches nothing.
    """
    nrow, ncol = v.shape
    if nrow == 0 or ncol == 0:
        return
    base = v.ctypes.data
    s0, s1 = v.strides
    span = (ncol - 1) * s1 + 8
    for r in range(step * nrow // nsteps, (step + 1) * nrow // nsteps):
        a0 = base + r * s0
        for off in range(0, span, 64):
            _prefetch(a0 + off)
        _prefetch(a0 + span - 8)


@numba.njit(cache=True)
def prefetch_rows_call(v, step, nsteps):
    """:func:`prefetch_rows` as a called (not inlined) function: one compiled copy shared by
    the kernels that prefetch a few times per row of work, where a call costs nothing and
    inlining each use only lengthened their compilation."""
    prefetch_rows(v, step, nsteps)
