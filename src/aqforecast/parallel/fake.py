"""An in-process multi-rank communicator (one thread per rank) for fast decomposition tests.

``run_ranks(n, fn)`` calls ``fn(comm)`` on ``n`` threads, each with a :class:`ThreadComm` of the
same group, and returns the results in rank order. Point-to-point messages go through a shared
mailbox; collectives use a barrier. It implements exactly the interface of
:class:`~aqforecast.parallel.comm.MPIComm` that the model uses, so N "ranks" can be checked
against one without launching MPI (the Pace pattern); real ``mpiexec -n 2`` tests complement it.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque

import numpy as np

__all__ = ["ThreadComm", "run_ranks"]


class _Group:
    def __init__(self, size: int):
        self.size = size
        self.cond = threading.Condition()
        self.mail = defaultdict(deque)  # (src, dest, tag) -> deque of arrays
        self.barrier = threading.Barrier(size)
        self.slots: list = [None] * size


class _Request:
    def __init__(self, kind, key=None, buf=None):
        self.kind, self.key, self.buf = kind, key, buf


class ThreadComm:
    is_mpi = True

    def __init__(self, group: _Group, rank: int):
        self.group = group
        self.rank = rank
        self.size = group.size

    def barrier(self):
        self.group.barrier.wait()

    def _allgather(self, obj):
        g = self.group
        g.barrier.wait()
        g.slots[self.rank] = obj
        g.barrier.wait()
        out = list(g.slots)
        g.barrier.wait()
        return out

    def allgather(self, obj):
        return self._allgather(obj)

    def gather(self, obj, root=0):
        out = self._allgather(obj)
        return out if self.rank == root else None

    def bcast(self, obj, root=0):
        return self._allgather(obj)[root]

    def scatter(self, objs, root=0):
        return self._allgather(objs)[root][self.rank]

    def alltoall(self, objs):
        everyone = self._allgather(list(objs))
        return [everyone[r][self.rank] for r in range(self.size)]

    def alltoall_arrays(self, send, recv_shapes, dtype):
        got = self.alltoall([None if a is None else np.array(a, dtype=dtype) for a in send])
        return [None if s is None else np.asarray(g).reshape(s)
                for g, s in zip(got, recv_shapes)]

    def allreduce_sum(self, x):
        parts = self._allgather(np.asarray(x))
        return np.sum(parts, axis=0) if np.ndim(x) else type(x)(np.sum(parts))

    def allreduce_max(self, x):
        parts = self._allgather(np.asarray(x))
        return np.max(parts, axis=0) if np.ndim(x) else type(x)(np.max(parts))

    def allreduce_min(self, x):
        parts = self._allgather(np.asarray(x))
        return np.min(parts, axis=0) if np.ndim(x) else type(x)(np.min(parts))

    def isend(self, buf, dest, tag):
        with self.group.cond:
            self.group.mail[(self.rank, dest, tag)].append(np.array(buf, copy=True))
            self.group.cond.notify_all()
        return _Request("send")

    def irecv(self, buf, source, tag):
        return _Request("recv", (source, self.rank, tag), buf)

    def waitall(self, requests):
        g = self.group
        for req in requests:
            if req.kind != "recv":
                continue
            with g.cond:
                if not g.cond.wait_for(lambda: len(g.mail[req.key]) > 0, timeout=30):
                    raise TimeoutError(f"rank {self.rank}: no message for {req.key}")
                np.copyto(req.buf, g.mail[req.key].popleft())


def run_ranks(n: int, fn):
    """Run ``fn(comm)`` on ``n`` in-process ranks; return the per-rank results."""
    group = _Group(n)
    results: list = [None] * n
    errors: list = []

    def target(r):
        try:
            results[r] = fn(ThreadComm(group, r))
        except BaseException as exc:  # re-raised in the caller
            errors.append(exc)
            group.barrier.abort()

    threads = [threading.Thread(target=target, args=(r,)) for r in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
