"""Communicators: one interface, a serial implementation and an MPI one.

The serial communicator runs exactly the same code path as MPI with one rank (every collective is
the identity), so the model never branches on "am I parallel?" (the Veros/Pace pattern). This
package is the only place in aqforecast that imports :mod:`mpi4py`, and only lazily.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

__all__ = ["SerialComm", "MPIComm", "get_comm", "launched_under_mpi"]


class SerialComm:
    """A communicator of one rank; collectives return their input."""

    rank = 0
    size = 1
    is_mpi = False

    def barrier(self) -> None:
        pass

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return obj

    def allreduce_sum(self, x):
        return x

    def allreduce_max(self, x):
        return x

    def allreduce_min(self, x):
        return x

    def gather(self, obj: Any, root: int = 0) -> list | None:
        return [obj]

    def allgather(self, obj: Any) -> list:
        return [obj]

    def scatter(self, objs: list | None, root: int = 0) -> Any:
        return objs[0]

    def alltoall(self, objs: list) -> list:
        return list(objs)

    def alltoall_arrays(self, send: list, recv_shapes: list, dtype) -> list:
        """:meth:`MPIComm.alltoall_arrays` with one rank: a copy of what it sends itself."""
        return [None if s is None else np.array(send[0], dtype=dtype).reshape(s)
                for s in recv_shapes]

    def isend(self, buf: np.ndarray, dest: int, tag: int):  # pragma: no cover - never called
        raise RuntimeError("SerialComm has no neighbours to send to")

    irecv = isend

    @staticmethod
    def waitall(requests) -> None:
        pass


class MPIComm:
    """Thin wrapper of an ``mpi4py`` communicator with the :class:`SerialComm` interface.

    Array reductions use the buffer interface (``Allreduce``), halo messages non-blocking
    ``Isend``/``Irecv`` on contiguous numpy buffers.
    """

    is_mpi = True

    def __init__(self, comm=None):
        from mpi4py import MPI

        self._MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()

    def barrier(self) -> None:
        self.comm.Barrier()

    def bcast(self, obj, root: int = 0):
        return self.comm.bcast(obj, root=root)

    def _allreduce(self, x, op):
        if np.isscalar(x) or np.ndim(x) == 0:
            return type(x)(self.comm.allreduce(x, op=op)) if np.isscalar(x) else \
                np.asarray(self.comm.allreduce(float(x), op=op))
        a = np.ascontiguousarray(x)
        out = np.empty_like(a)
        self.comm.Allreduce(a, out, op=op)
        return out

    def allreduce_sum(self, x):
        return self._allreduce(x, self._MPI.SUM)

    def allreduce_max(self, x):
        return self._allreduce(x, self._MPI.MAX)

    def allreduce_min(self, x):
        return self._allreduce(x, self._MPI.MIN)

    def gather(self, obj, root: int = 0):
        return self.comm.gather(obj, root=root)

    def allgather(self, obj):
        return self.comm.allgather(obj)

    def scatter(self, objs, root: int = 0):
        return self.comm.scatter(objs, root=root)

    def alltoall(self, objs: list) -> list:
        """objs[r] goes to rank r; returns what every rank sent to this one (pickled)."""
        return self.comm.alltoall(objs)

    def alltoall_arrays(self, send: list, recv_shapes: list, dtype) -> list:
        """Arrays by buffer, not pickled (``MPI_Alltoallv``): ``send[r]`` (an array of any
        strides, or None) goes to rank r; ``recv_shapes[r]`` is the shape this rank receives
        from r (None: nothing). Returns the received arrays (views of one buffer) or None.
        One packing copy on each side; the lowercase pickled :meth:`alltoall` made three more
        and cost 37 % of a 2-rank tagged step in the transposes (cProfile, sample case)."""
        send_buf, send_counts = pack_arrays(send, dtype)
        recv_counts = _counts(recv_shapes)
        recv_buf = np.empty(int(recv_counts.sum()), dtype=dtype)
        self.comm.Alltoallv([send_buf, (send_counts, _offsets(send_counts))],
                            [recv_buf, (recv_counts, _offsets(recv_counts))])
        return unpack_arrays(recv_buf, recv_shapes, recv_counts)

    def isend(self, buf: np.ndarray, dest: int, tag: int):
        return self.comm.Isend(buf, dest=dest, tag=tag)

    def irecv(self, buf: np.ndarray, source: int, tag: int):
        return self.comm.Irecv(buf, source=source, tag=tag)

    def waitall(self, requests) -> None:
        self._MPI.Request.Waitall(list(requests))


def _offsets(counts: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)


def pack_arrays(arrays: list, dtype) -> tuple[np.ndarray, np.ndarray]:
    """One flat buffer of ``dtype`` holding every array (None: nothing) in order, and the
    element counts."""
    counts = np.array([0 if a is None else a.size for a in arrays], dtype=np.int64)
    buf = np.empty(int(counts.sum()), dtype=dtype)
    for a, off, n in zip(arrays, _offsets(counts), counts):
        if a is not None and n:
            buf[off:off + n].reshape(a.shape)[...] = a
    return buf, counts


def _counts(shapes: list) -> np.ndarray:
    """Element counts of arrays of these shapes (None: 0)."""
    return np.array([0 if s is None else int(np.prod(s)) for s in shapes], dtype=np.int64)


def unpack_arrays(buf: np.ndarray, shapes: list, counts: np.ndarray | None = None) -> list:
    """Views of a flat buffer with the given shapes, in order (None: nothing); ``counts``:
    their element counts if known."""
    counts = _counts(shapes) if counts is None else counts
    return [None if s is None else buf[off:off + n].reshape(s)
            for s, off, n in zip(shapes, _offsets(counts), counts)]


def launched_under_mpi() -> bool:
    """True when an MPI launcher started this process with more than one rank."""
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"):
        if var in os.environ:
            try:
                return int(os.environ[var]) > 1
            except ValueError:
                return True
    return False


def abort_all(code: int = 1) -> None:
    """End every rank of the job (``MPI_Abort``) when running under MPI with several ranks: an
    error on one rank must not leave the others waiting in a collective. No-op otherwise."""
    if not launched_under_mpi():
        return
    try:
        from mpi4py import MPI
    except ImportError:  # pragma: no cover - launched_under_mpi without mpi4py
        return
    if MPI.Is_initialized() and not MPI.Is_finalized() and MPI.COMM_WORLD.Get_size() > 1:
        import sys

        sys.stderr.flush()
        sys.stdout.flush()
        # the launcher forwards each rank's output asynchronously and MPI_Abort tears the job
        # down at once: without a moment's grace the failing rank's message was sometimes lost
        # (a fresh-clone CI run saw rc 2 and an empty stderr)
        time.sleep(0.5)
        MPI.COMM_WORLD.Abort(code)
        # MPICH's MPI_Abort may return before the launcher ends the job (measured with the
        # mpich wheel): this rank must not go on into a collective the others wait in
        os._exit(code)


def get_comm(kind: str = "auto"):
    """The communicator to use: ``"serial"``, ``"mpi"`` or ``"auto"`` (MPI when launched so)."""
    if kind == "serial":
        return SerialComm()
    if kind == "mpi" or (kind == "auto" and launched_under_mpi()):
        try:
            return MPIComm()
        except ImportError as exc:
            raise RuntimeError("launched under MPI but mpi4py is not importable; install the "
                               "'mpi' extra (mpi4py + mpich)") from exc
    if kind != "auto":
        raise ValueError(f"unknown communicator kind {kind!r}; use serial, mpi or auto")
    return SerialComm()
