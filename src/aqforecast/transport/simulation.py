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

    #: a function of the simulation's time, iteration and end only (no side effects): the
    #: simulation may ask it ahead of time (nested domains stepped concurrently, Simulation)
    pure = True

    def __init__(self, seconds: float):
        if seconds <= 0:
            raise ValueError("TimeInterval needs a positive interval")
        self.seconds = float(seconds)

    def __call__(self, sim: "Simulation") -> bool:
        elapsed = sim.elapsed_seconds
        return elapsed > 0 and abs(elapsed / self.seconds - round(elapsed / self.seconds)) < 1e-9


class IterationInterval:
    pure = True

    def __init__(self, n: int):
        self.n = int(n)

    def __call__(self, sim: "Simulation") -> bool:
        return sim.iteration > 0 and sim.iteration % self.n == 0


class AtEnd:
    pure = True

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

    **Nests step beside their parents** (``concurrent=True``, off by default; it applies when
    every model is on one MPI rank and every schedule is ``pure``): a nest's step
    from t to t + dt reads the lateral boundary from its parent at t + dt only, so once the
    parent has made that step and the nest has taken (pinned) its boundary, the parent's next
    step and the nest's step are independent and run on two threads -- a pipeline, the nest
    one step behind, drained whenever a callback or output writer is due (they see every model
    at the same time, as in the step-by-step order). The results are bit for bit those of
    stepping the models one after the other (each model's arithmetic is unchanged; tested).
    What it was meant to gain: the Python between each model's threaded kernels (a third of a
    step on 2 cores) overlapping the other model's kernels; measured on the 2-core sample case
    it does not pay (0.92-1.09x, within the noise; README, Speed), so it is off by default.
    A schedule is ``pure`` when it is a function of the simulation's time, iteration and end
    only and has no side effects (``pure = True`` on it: :class:`TimeInterval`,
    :class:`IterationInterval`, :class:`AtEnd`), since it is asked ahead of time where the
    next drain must be; anything else keeps the step-by-step order.
    """

    models: Sequence
    stop_time: np.datetime64
    dt: float = 300.0
    callbacks: dict = field(default_factory=dict)
    output_writers: dict = field(default_factory=dict)
    progress: bool = False
    rank: int = 0
    concurrent: bool = False

    def __post_init__(self):
        self.stop_time = np.datetime64(self.stop_time, "s")
        times = {str(m.time) for m in self.models}
        if len(times) != 1:
            raise ValueError(f"models start at different times: {sorted(times)}")
        self.start_time = np.datetime64(self.models[0].time, "s")
        self.iteration = 0
        self.at_end = False
        self.wall_seconds = 0.0
        self._virtual_time = None  # the time a schedule is asked about ahead (_steps_to_event)

    @property
    def time(self) -> np.datetime64:
        if self._virtual_time is not None:
            return self._virtual_time
        return np.datetime64(self.models[0].time, "s")

    @property
    def elapsed_seconds(self) -> float:
        return float((self.time - self.start_time) / np.timedelta64(1, "s"))

    def _fire(self):
        for cb in list(self.callbacks.values()) + list(self.output_writers.values()):
            if cb.schedule(self):
                cb.func(self)

    def _progress(self, bar, t0, steps) -> None:
        if bar is None:
            return
        elapsed = walltime.perf_counter() - t0
        days = self.iteration * self.dt / 86400.0
        bar.set_description(f"{str(self.time)[:16]}", refresh=False)
        bar.set_postfix_str(f"{elapsed / max(days, 1e-9):.0f} s/sim-day", refresh=False)
        bar.update(steps)

    def _depths(self) -> list[int] | None:
        """Nesting depth of each model (0: no parent among the models), or None when a nest is
        listed before its parent."""
        index = {id(m): i for i, m in enumerate(self.models)}
        depth = []
        for i, m in enumerate(self.models):
            p = getattr(m, "parent", None)
            if p is None or id(p) not in index:
                depth.append(0)
            elif index[id(p)] >= i:
                return None
            else:
                depth.append(depth[index[id(p)]] + 1)
        return depth

    def _use_concurrent(self) -> bool:
        """Whether to step nests beside their parents (class docstring)."""
        if not self.concurrent or len(self.models) < 2:
            return False
        depth = self._depths()
        if depth is None or max(depth) == 0:
            return False
        if not all(getattr(getattr(m, "layout", None), "serial", False) for m in self.models):
            return False  # MPI collectives must keep one order on every rank
        if not all(getattr(cb.schedule, "pure", False)
                   for cb in list(self.callbacks.values()) + list(self.output_writers.values())):
            return False
        return True

    def _steps_to_event(self, limit: int) -> int:
        """Steps from now (1 .. limit) after which a callback or output writer is due."""
        schedules = [cb.schedule for cb in
                     list(self.callbacks.values()) + list(self.output_writers.values())]
        if not schedules:
            return limit
        now, iteration, at_end = self.time, self.iteration, self.at_end
        try:
            for k in range(1, limit + 1):
                self._virtual_time = now + np.timedelta64(int(round(k * self.dt)), "s")
                self.iteration = iteration + k
                self.at_end = self._virtual_time >= self.stop_time
                if any(f(self) for f in schedules):
                    return k
            return limit
        finally:
            self._virtual_time = None
            self.iteration, self.at_end = iteration, at_end

    def _run_concurrent(self, nsteps: int, bar, t0) -> None:
        """:meth:`run` with nests one step behind their parents on other threads, in segments
        that end where a callback is due (class docstring)."""
        from concurrent.futures import ThreadPoolExecutor

        depth = self._depths()
        lag = max(depth)
        done = 0
        with ThreadPoolExecutor(max_workers=len(self.models) - 1,
                                thread_name_prefix="aqforecast-domain") as pool:
            while done < nsteps:
                n = self._steps_to_event(nsteps - done)
                # stage s: model i makes its step s - depth[i] of the segment
                for stage in range(n + lag):
                    movers = [m for m, d in zip(self.models, depth) if 0 <= stage - d < n]
                    nests = [m for m, d in zip(self.models, depth) if d and m in movers]
                    for m in nests:
                        m.set_boundary_from_parent()  # parents are at the nest's step end
                    futures = [pool.submit(m.step, self.dt) for m in movers[1:]]
                    try:
                        movers[0].step(self.dt)
                    finally:  # never go on while another model still steps
                        for f in futures:
                            f.exception()
                    for f in futures:
                        f.result()
                    for m in nests:
                        if hasattr(m, "release_boundary"):
                            m.release_boundary()
                done += n
                self.iteration += n
                self.at_end = self.time >= self.stop_time
                self._fire()
                self._progress(bar, t0, n)

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
        if nsteps and self._use_concurrent():
            try:
                self._run_concurrent(nsteps, bar, t0)
            finally:
                if bar is not None:
                    bar.close()
                self.wall_seconds += walltime.perf_counter() - t0
            return
        try:
            for _ in range(nsteps):
                for m in self.models:
                    nested = getattr(m, "parent", None) is not None
                    if nested:
                        m.set_boundary_from_parent()
                    m.step(self.dt)
                    if nested and hasattr(m, "release_boundary"):
                        m.release_boundary()
                self.iteration += 1
                self.at_end = self.time >= self.stop_time
                self._fire()
                self._progress(bar, t0, 1)
        finally:
            if bar is not None:
                bar.close()
            self.wall_seconds += walltime.perf_counter() - t0
        if nsteps == 0:
            self.at_end = True
            self._fire()
