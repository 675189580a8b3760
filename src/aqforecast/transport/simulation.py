"""Grid -> Model -> Simulation: run one or more nested domain models with schedules.

The shape follows Oceananigans: a :class:`Simulation` advances its models with a fixed
synchronisation step, and calls *callbacks* and *output writers* on *schedules*
(:class:`TimeInterval`, :class:`IterationInterval`, :class:`AtEnd`, :class:`WallTimeInterval`).
Nests listed after their parent get their lateral boundaries from it before each step (one-way
nesting). A notebook can run and inspect a short forecast with nothing else::

    sim = Simulation([parent_model, nest_model], stop_time=start + np.timedelta64(6, "h"))
    sim.callbacks["mass"] = Callback(lambda s: print(s.models[0].total_mass()), TimeInterval(3600))
    sim.run()
"""

from __future__ import annotations

import logging
import time as walltime
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["TimeInterval", "IterationInterval", "AtEnd", "WallTimeInterval", "Callback",
           "Simulation"]


class TimeInterval:
    """Fires when simulated time since the start is a multiple of ``seconds``."""

    def __init__(self, seconds: float):
        if seconds <= 0:
            raise ValueError("TimeInterval needs a positive interval")
        self.seconds = float(seconds)

    def __call__(self, sim: "Simulation") -> bool:
        elapsed = sim.elapsed_seconds
        return elapsed > 0 and abs(elapsed / self.seconds - round(elapsed / self.seconds)) < 1e-9


class IterationInterval:
    def __init__(self, n: int):
        self.n = int(n)

    def __call__(self, sim: "Simulation") -> bool:
        return sim.iteration > 0 and sim.iteration % self.n == 0


class AtEnd:
    def __call__(self, sim: "Simulation") -> bool:
        return sim.at_end


class WallTimeInterval:
    """Fires when ``seconds`` of wall time have passed since it last fired."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self._last = walltime.perf_counter()

    def __call__(self, sim: "Simulation") -> bool:
        now = walltime.perf_counter()
        if now - self._last >= self.seconds:
            self._last = now
            return True
        return False


@dataclass
class Callback:
    func: Callable[["Simulation"], None]
    schedule: Callable[["Simulation"], bool]


@dataclass
class Simulation:
    """Advance ``models`` (parents before their nests) from their common time to ``stop_time``.

    ``dt`` is the synchronisation step in seconds (each model sub-steps advection for CFL).
    ``callbacks`` and ``output_writers`` are dicts of :class:`Callback`; output writers run
    after callbacks. ``progress`` shows a tqdm bar on rank 0 with simulated time, wall seconds
    per simulated day and the ETA.
    """

    models: Sequence
    stop_time: np.datetime64
    dt: float = 300.0
    callbacks: dict = field(default_factory=dict)
    output_writers: dict = field(default_factory=dict)
    progress: bool = False
    rank: int = 0

    def __post_init__(self):
        self.stop_time = np.datetime64(self.stop_time, "s")
        times = {str(m.time) for m in self.models}
        if len(times) != 1:
            raise ValueError(f"models start at different times: {sorted(times)}")
        self.start_time = np.datetime64(self.models[0].time, "s")
        self.iteration = 0
        self.at_end = False
        self.wall_seconds = 0.0

    @property
    def time(self) -> np.datetime64:
        return np.datetime64(self.models[0].time, "s")

    @property
    def elapsed_seconds(self) -> float:
        return float((self.time - self.start_time) / np.timedelta64(1, "s"))

    def _fire(self):
        for cb in list(self.callbacks.values()) + list(self.output_writers.values()):
            if cb.schedule(self):
                cb.func(self)

    def run(self) -> None:
        total = float((self.stop_time - self.time) / np.timedelta64(1, "s"))
        if total < 0:
            raise ValueError(f"stop time {self.stop_time} is before the model time {self.time}")
        nsteps = int(round(total / self.dt))
        if abs(nsteps * self.dt - total) > 1e-6:
            raise ValueError(f"run length {total} s is not a multiple of dt = {self.dt} s")
        bar = None
        if self.progress and self.rank == 0 and nsteps:
            from tqdm.auto import tqdm

            bar = tqdm(total=nsteps, unit="step", dynamic_ncols=True, mininterval=1.0)
        t0 = walltime.perf_counter()
        try:
            for _ in range(nsteps):
                for m in self.models:
                    if getattr(m, "parent", None) is not None:
                        m.set_boundary_from_parent()
                    m.step(self.dt)
                self.iteration += 1
                self.at_end = self.time >= self.stop_time
                self._fire()
                if bar is not None:
                    elapsed = walltime.perf_counter() - t0
                    days = self.iteration * self.dt / 86400.0
                    bar.set_description(f"{str(self.time)[:16]}", refresh=False)
                    bar.set_postfix_str(f"{elapsed / max(days, 1e-9):.0f} s/sim-day",
                                        refresh=False)
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
            self.wall_seconds += walltime.perf_counter() - t0
        if nsteps == 0:
            self.at_end = True
            self._fire()
