"""Seconds per phase of a scenario or plan stage: ``timings.csv`` (phase, seconds) and the
``timing`` entry of the stage's ``_SUCCESS`` manifest (``total``: the stage's wall time)."""

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

    @contextmanager
    def phase(self, name: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + float(seconds)

    def as_dict(self) -> dict[str, float]:
        out = {k: round(v, 3) for k, v in self.seconds.items()}
        out["total"] = round(time.perf_counter() - self._t0, 3)
        return out

    def write(self, path: str | Path) -> Path:
        """``path`` (CSV: phase, seconds), the total last."""
        path = Path(path)
        d = self.as_dict()
        with atomic_path(path) as tmp:
            pd.DataFrame({"phase": list(d), "seconds": list(d.values())}).to_csv(
                tmp, index=False)
        return path
