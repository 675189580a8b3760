"""Compile a kernel in a child process while this one goes on (numba's on-disk cache between them).

A cold first call of the model compiles dozens of kernels one after the other on one core; the
tagged Walcek sweep alone is about half of that (``benchmarks/forecast.py --compile``). A child
started at set-up compiles it for the argument types the model will pass and writes numba's cache
(``NUMBA_CACHE_DIR``, inherited; numba writes cache files atomically); the first call here waits
for the child, then loads the compiled code. If the child fails, the call compiles here as
usual: a background compilation can only save time. The chemistry's mechanism does the same
(:meth:`aqforecast.chemistry.solver.CompiledMechanism.compile_in_background`).
"""

from __future__ import annotations

import atexit
import logging
import subprocess
import sys
import tempfile
import threading

import numba

__all__ = ["BackgroundCompile", "in_numba_cache"]

log = logging.getLogger(__name__)


class BackgroundCompile:
    """One child process running ``code`` (Python source) to fill numba's cache; started at
    most once per process by :meth:`start`, waited for by :meth:`wait` (thread-safe).
    ``cached``: a callable saying whether the code is in the cache already (no child then);
    ``stdin``: bytes written to the child's standard input (its arguments)."""

    def __init__(self, name: str, code: str, cached=None, stdin: bytes = b""):
        self.name, self.code, self.cached, self.stdin = name, code, cached, stdin
        self._child = None  # (process, its stderr file) while one may run
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> bool:
        """Start the child (not with NUMBA_DISABLE_JIT, not twice, not when ``cached()`` says
        numba's cache already has the code); returns whether it was started."""
        with self._lock:
            if self._started or numba.config.DISABLE_JIT:
                return False
            self._started = True
            if self.cached is not None and self.cached():
                return False
            try:
                err = tempfile.TemporaryFile()
                proc = subprocess.Popen([sys.executable, "-c", self.code],
                                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        stderr=err)
                proc.stdin.write(self.stdin)
                proc.stdin.close()
            except OSError as exc:  # no subprocesses here: the first call compiles
                log.debug("background compilation of %s not started: %s", self.name, exc)
                return False
            self._child = (proc, err)
            atexit.register(_stop, proc)
            return True

    def wait(self) -> None:
        """Wait for the child if one was started and not yet waited for."""
        if self._child is None:
            return
        with self._lock:
            if self._child is None:
                return
            (proc, errors), self._child = self._child, None
            rc = proc.wait()
            errors.seek(0)
            err = errors.read().decode(errors="replace")
            errors.close()
        if rc != 0:
            log.warning("background compilation of %s failed (compiling here instead): %s",
                        self.name, (err.strip().splitlines() or [""])[-1])


def in_numba_cache(dispatcher) -> bool:
    """Whether numba's cache holds compiled code of ``dispatcher`` for its current source (its
    index file, stamped with the source file's time and size; numba's internals, so any
    failure reads as "no")."""
    try:
        return bool(dispatcher._cache._cache_file._load_index())
    except Exception:  # noqa: BLE001 - an internal API: never let it stop a run
        return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:  # numba writes cache files atomically: stopping it is safe
        proc.kill()
        proc.wait()
