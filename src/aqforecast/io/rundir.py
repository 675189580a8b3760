"""Run directories: one run per directory, claimed before any work, marked when complete.

A stage that writes into a directory first *claims* it (:func:`claim_run_dir`):

* the directory must be creatable and writable (checked by creating the lock file, so a
  read-only ``--out`` fails at start-up, not after hours of compute);
* a lock file ``.aqforecast.lock`` (pid, host, start time) guards it against a second run; a
  lock left by a dead process on this host is taken over (with a warning);
* a directory holding another run's outputs (a completion marker, output parts, restarts or
  result files) is refused unless the caller resumes that run or overwrites it (then exactly
  those outputs are removed first; other files are left alone).

When a stage has written everything it writes ``_SUCCESS`` (:func:`write_success`): a JSON
manifest of the files with their sizes and SHA-256 sums, written last and atomically, so its
presence means the directory is complete. :func:`require_success` is the check a consumer makes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterable
from pathlib import Path

from .netcdf import InputFileError, atomic_path

__all__ = ["claim_run_dir", "release_run_dir", "write_success", "require_success",
           "RunDirClaim", "LOCK_NAME", "SUCCESS_NAME"]

log = logging.getLogger(__name__)

LOCK_NAME = ".aqforecast.lock"
SUCCESS_NAME = "_SUCCESS"
#: what a run leaves in its directory (globs); --overwrite removes exactly these
RUN_OUTPUTS = (SUCCESS_NAME, ".parts", "restart", "conc_*.nc", "tags_*.nc", "budget_*.csv",
               "*.nc.tmp*")


class RunDirClaim:
    """A claimed run directory (``path``, the ``lock`` file); :meth:`release` removes the lock."""

    def __init__(self, path: Path, lock: Path):
        self.path = path
        self.lock = lock

    def release(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.lock.unlink()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _take_lock(lock: Path) -> None:
    """Create ``lock`` exclusively (taking over one left by a dead process on this host)."""
    host = socket.gethostname()
    text = json.dumps({"pid": os.getpid(), "host": host,
                       "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                held = json.loads(lock.read_text() or "{}")
            except (OSError, ValueError):
                held = {}
            pid, where = held.get("pid"), held.get("host")
            if where == host and isinstance(pid, int) and not _pid_alive(pid):
                log.warning("%s: taking over the lock of process %d, which is no longer "
                            "running", lock, pid)
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()
                continue
            raise InputFileError(
                f"{lock.parent}: another aqforecast run holds this directory (process "
                f"{pid} on host {where}, since {held.get('since', '?')}); wait for it to end, "
                f"use another output directory, or remove {lock} if that run is dead")
        with os.fdopen(fd, "w") as fh:
            fh.write(text + "\n")
        return


def existing_outputs(path: Path) -> list[Path]:
    """The files and directories of a run already in ``path``."""
    found: list[Path] = []
    for pattern in RUN_OUTPUTS:
        found += sorted(path.glob(pattern))
    return found


def claim_run_dir(path: str | Path, *, resume: bool = False, overwrite: bool = False,
                  what: str = "run") -> RunDirClaim:
    """Claim ``path`` for a run (see the module docstring); raises :class:`InputFileError`
    naming the directory and what to do. ``resume``: the outputs of the run being continued
    are expected there; ``overwrite``: another run's outputs are removed first."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputFileError(f"{path}: cannot create the output directory: "
                             f"{exc.strerror}") from None
    lock = path / LOCK_NAME
    try:
        _take_lock(lock)
    except PermissionError:
        raise InputFileError(f"{path}: the output directory is not writable; give an --out "
                             f"you can write to") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot write in the output directory: "
                             f"{exc.strerror}") from None
    claim = RunDirClaim(path, lock)
    old = existing_outputs(path)
    if old and not resume:
        if not overwrite:
            claim.release()
            names = ", ".join(p.name for p in old[:6]) + (" ..." if len(old) > 6 else "")
            raise InputFileError(
                f"{path}: holds the outputs of another {what} ({names}); give --resume to "
                f"continue that run, --overwrite to replace it, or another output directory")
        for p in old:
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
        log.info("%s: removed the outputs of the previous %s (--overwrite)", path, what)
    return claim


def release_run_dir(claim: RunDirClaim | None) -> None:
    if claim is not None:
        claim.release()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_success(directory: str | Path, files: Iterable[str | Path],
                  info: dict | None = None) -> Path:
    """Write ``directory/_SUCCESS``: a JSON manifest (path relative to ``directory``, bytes,
    sha256) of ``files``, written atomically after them."""
    directory = Path(directory)
    manifest = []
    for f in files:
        f = Path(f)
        if not f.is_file():
            raise InputFileError(f"{f}: listed as an output but not written")
        rel = os.path.relpath(f.resolve(), directory.resolve())
        manifest.append({"path": str(rel), "bytes": f.stat().st_size, "sha256": _sha256(f)})
    out = directory / SUCCESS_NAME
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps({"written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                   **(info or {}), "files": manifest}, indent=1) + "\n")
    return out


def require_success(directory: str | Path, what: str = "run") -> dict:
    """The manifest of a complete ``directory`` (its ``_SUCCESS``); an error naming the
    directory when it is missing (the producing stage did not finish)."""
    directory = Path(directory)
    marker = directory / SUCCESS_NAME
    if not marker.exists():
        raise InputFileError(f"{directory}: no {SUCCESS_NAME}: the {what} there did not finish "
                             f"(or is still running); run it (again) first")
    try:
        return json.loads(marker.read_text())
    except ValueError:
        raise InputFileError(f"{marker}: not a valid completion manifest") from None
