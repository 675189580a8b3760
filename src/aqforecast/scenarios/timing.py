"""Seconds per phase of a scenario or plan stage: ``timings.csv`` (phase, seconds) and the
``timing`` entry of the stage's ``_SUCCESS`` manifest (``total``: the stage's wall time). Phases
that make or reuse model runs also count them (:meth:`PhaseTimer.count`): ``timings.csv`` then
has a third column ``runs`` (e.g. ``response_runs``: perturbed runs made, ``response_runs_cached``:
reused; empty for phases without runs) and the manifest a ``runs`` entry."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ..io import atomic_path

__all__ = ["PhaseTimer"]


class PhaseTimer:
    """Wall-clock seconds per named phase (repeated phases add up), from construction."""

    def __init__(self):
        self._t0 = time.perf_counter()
        self.seconds: dict[str, float] = {}
        self.runs: dict[str, int] = {}

    @contextmanager
    def phase(self, name: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + float(seconds)

    def count(self, name: str, runs: int) -> None:
        """Add ``runs`` model runs to phase ``name`` (a phase with 0 s if it had none)."""
        self.seconds.setdefault(name, 0.0)
        self.runs[name] = self.runs.get(name, 0) + int(runs)

    def as_dict(self) -> dict[str, float]:
        out = {k: round(v, 3) for k, v in self.seconds.items()}
        out["total"] = round(time.perf_counter() - self._t0, 3)
        return out

    def write(self, path: str | Path) -> Path:
        """``path`` (CSV: phase, seconds[, runs]), the total last."""
        path = Path(path)
        with atomic_path(path) as tmp:
            self.frame().to_csv(tmp, index=False)
        return path

    def frame(self, seconds: dict[str, float] | None = None) -> pd.DataFrame:
        """The table of :meth:`write`: ``seconds`` (default :meth:`as_dict`) and the runs."""
        d = self.as_dict() if seconds is None else seconds
        df = pd.DataFrame({"phase": list(d), "seconds": list(d.values())})
        if self.runs:
            df["runs"] = pd.array([self.runs.get(k) for k in d], dtype="Int64")
        return df
