"""Emission-reduction scenarios in YAML: the schema, its checks against a run, and the scaling
table a scenario becomes.

A scenario is data only (``config/scenarios/*.yaml``)::

    name: hangzhou-industry-nox
    description: ...                  # optional
    measures:
      - name: industry-nox
        regions: [Hangzhou]           # configured regions, `outside`, or all
        sectors: [industry]           # inventory sectors, or all
        pollutants: [NOx]             # SO2 NOx CO NMVOC NH3 PM25 PMC (PM10 = PM25 + PMC), or all
        cut: 0.30                     # fraction removed, 0..1 -- or `scale:` any factor >= 0
        from_hour: 24                 # lead hours of the forecast, [from, to); default the run
        to_hour: 96
        cost_per_tonne: 12000         # optional, currency per tonne abated
        max_cut: 0.6                  # optional, the optimiser's bound

``all`` regions means the configured regions, not ``outside`` (name ``outside`` to include it).
Overlapping measures compose multiplicatively (the scaling table's rule). The file is read with
the config's strict loader: unknown keys, a cut outside [0, 1], a window outside the forecast
or an unknown region/sector/pollutant fail with the file, the key and its line.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..config import ConfigError, key_location, load_yaml_model
from ..emissions.inventory import POLLUTANTS
from ..emissions.regions import OUTSIDE
from ..emissions.scaling import ScalingTable, to_utc

__all__ = ["Measure", "Scenario", "Limit", "Target", "read_scenario", "read_target",
           "scenario_to_scaling", "ALL"]

ALL = "all"
_STRICT = ConfigDict(extra="forbid", frozen=True)
PM10 = "PM10"


def _names(v):
    """``all`` / ``[all]`` -> "all"; a string -> [string]; a list stays."""
    if isinstance(v, str):
        return ALL if v.strip().lower() == ALL else [v]
    if isinstance(v, list) and len(v) == 1 and str(v[0]).strip().lower() == ALL:
        return ALL
    return v


class Measure(BaseModel):
    """One emission measure (module docstring)."""

    model_config = _STRICT

    name: str = Field(min_length=1, max_length=64)
    regions: Literal["all"] | list[str] = ALL
    sectors: Literal["all"] | list[str] = ALL
    pollutants: Literal["all"] | list[str] = ALL
    cut: float | None = Field(default=None, ge=0.0, le=1.0,
                              description="fraction of the emissions removed")
    scale: float | None = Field(default=None, ge=0.0, description="factor on the emissions")
    from_hour: float = Field(default=0.0, ge=0.0, description="lead hour the measure starts")
    to_hour: float | None = Field(default=None, gt=0.0,
                                  description="lead hour it ends (exclusive); None: run end")
    cost_per_tonne: float | None = Field(default=None, ge=0.0)
    max_cut: float | None = Field(default=None, ge=0.0, le=1.0)

    @field_validator("regions", "sectors", "pollutants", mode="before")
    @classmethod
    def _all_or_list(cls, v):
        return _names(v)

    @model_validator(mode="after")
    def _consistent(self):
        if self.to_hour is not None and self.to_hour <= self.from_hour:
            raise ValueError(f"to_hour ({self.to_hour:g}) must be after from_hour "
                             f"({self.from_hour:g})")
        if self.max_cut is not None and self.cut is not None and self.cut > self.max_cut:
            raise ValueError(f"cut {self.cut:g} exceeds max_cut {self.max_cut:g}")
        if self.cut is not None and self.scale is not None:
            raise ValueError("give cut or scale, not both")
        for field in ("regions", "sectors", "pollutants"):
            v = getattr(self, field)
            if v != ALL and not v:
                raise ValueError(f"{field} is empty (give names or all)")
        return self

    @property
    def factor(self) -> float:
        """The emission factor of the measure (1 - cut, or scale); 1 for a bound-only one."""
        if self.scale is not None:
            return float(self.scale)
        return 1.0 - float(self.cut or 0.0)


class Scenario(BaseModel):
    """A named set of measures (module docstring)."""

    model_config = _STRICT

    name: str = Field(min_length=1, max_length=80)
    description: str = ""
    measures: list[Measure] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self):
        names = [m.name for m in self.measures]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"measure names must be unique: {', '.join(dup)}")
        return self


def _check(scenario, path, lines, regions, sectors, lead_hours, require_amount):
    """Names and windows against the run; ConfigError with file, key, line."""
    known = {"pollutants": list(dict.fromkeys(list(POLLUTANTS) + [PM10]))}
    if regions is not None:
        known["regions"] = list(regions) + [OUTSIDE]
    if sectors is not None:
        known["sectors"] = list(sectors)
    for i, m in enumerate(scenario.measures):
        for field, names in known.items():
            v = getattr(m, field)
            if v == ALL:
                continue
            for j, n in enumerate(v):
                if n not in names:
                    raise ConfigError(f"{key_location(path, ('measures', i, field, j), lines)}"
                                      f": unknown {field[:-1]} {n!r}; expected one of "
                                      f"{', '.join(names)} or all")
        if lead_hours is not None:
            for key in ("from_hour", "to_hour"):
                v = getattr(m, key)
                if v is not None and v > lead_hours:
                    raise ConfigError(f"{key_location(path, ('measures', i, key), lines)}: "
                                      f"{v:g} lies beyond the forecast's {lead_hours} h")
        if require_amount and m.cut is None and m.scale is None:
            raise ConfigError(f"{key_location(path, ('measures', i), lines)}: measure "
                              f"{m.name!r} needs cut (0..1) or scale (>= 0)")


def read_scenario(path, regions=None, sectors=None, lead_hours: int | None = None,
                  require_amount: bool = True) -> Scenario:
    """Read and check a scenario YAML (module docstring). ``regions``/``sectors``: the names
    the run knows (None: not checked); ``lead_hours``: the forecast length the windows must lie
    in; ``require_amount``: every measure needs ``cut`` or ``scale`` (False for the optimiser's
    candidates, which give ``max_cut``)."""
    scenario, lines = load_yaml_model(path, Scenario, "scenario")
    _check(scenario, Path(path), lines, regions, sectors, lead_hours, require_amount)
    return scenario


def scenario_to_scaling(scenario: Scenario, cycle_start, regions, cuts: dict | None = None
                        ) -> ScalingTable:
    """The forecast's ``--scaling`` table of a scenario: one row per (measure, region, sector,
    pollutant) with factor ``1 - cut`` (or ``scale``) on [start + from_hour, start + to_hour)
    UTC; ``all`` sectors/pollutants become ``*``, ``all`` regions the configured ``regions``
    (not ``outside``); PM10 becomes PM25 and PMC. ``cuts`` (measure name -> cut) overrides the
    measures' amounts (the optimiser's plan). Extra columns: ``measure``."""
    t0 = to_utc(cycle_start)
    rows = []
    for m in scenario.measures:
        factor = 1.0 - cuts[m.name] if cuts is not None and m.name in cuts else m.factor
        if factor == 1.0:
            continue
        start = t0 + timedelta(hours=m.from_hour) if m.from_hour else None
        end = t0 + timedelta(hours=m.to_hour) if m.to_hour is not None else None
        regs = list(regions) if m.regions == ALL else m.regions
        secs = ["*"] if m.sectors == ALL else m.sectors
        pols = ["*"] if m.pollutants == ALL else [q for p in m.pollutants for q in
                                                  (("PM25", "PMC") if p == PM10 else (p,))]
        for r in regs:
            for s in secs:
                for p in dict.fromkeys(pols):
                    rows.append({"region": r, "sector": s, "pollutant": p, "factor": factor,
                                 "start": start, "end": end, "measure": m.name})
    return ScalingTable.from_rows(rows, source=f"scenario {scenario.name}")


class Limit(BaseModel):
    """One target limit: a city daily statistic that must stay at or below ``max`` (or change
    by at most ``max_change``, a fraction of the base: -0.10 = at least a 10 % reduction)."""

    model_config = _STRICT

    pollutant: Literal["PM2.5", "PM10", "O3", "NO2", "SO2", "CO", "AQI"]
    statistic: Literal["daily_mean", "daily_max", "mda8", "index"] = "daily_mean"
    max: float | None = Field(default=None, description="ug m-3 (CO mg m-3; AQI index)")
    max_change: float | None = Field(default=None, ge=-1.0,
                                     description="fraction of the base value (negative: cut)")
    cities: Literal["all"] | list[str] = ALL
    days: list[int] = Field(min_length=1, description="lead days (the products' numbering)")

    @field_validator("cities", mode="before")
    @classmethod
    def _all_or_list(cls, v):
        return _names(v)

    @model_validator(mode="after")
    def _one_bound(self):
        if (self.max is None) == (self.max_change is None):
            raise ValueError("give max or max_change (one of them)")
        if self.pollutant == "AQI" and self.statistic != "index":
            raise ValueError("AQI limits use statistic: index")
        if self.pollutant == "O3" and self.statistic == "daily_mean":
            raise ValueError("O3 limits use mda8 or daily_max")
        if any(d < 1 for d in self.days):
            raise ValueError("lead days start at 1")
        return self


class Target(BaseModel):
    """A concentration target and the candidate measures the plan chooses from."""

    model_config = _STRICT

    name: str = Field(min_length=1, max_length=80)
    description: str = ""
    limits: list[Limit] = Field(min_length=1)
    measures: list[Measure] = Field(min_length=1)

    @model_validator(mode="after")
    def _candidates(self):
        names = [m.name for m in self.measures]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"measure names must be unique: {', '.join(dup)}")
        for m in self.measures:
            if m.max_cut is None:
                raise ValueError(f"candidate measure {m.name!r} needs max_cut (its bound)")
            if m.scale is not None:
                raise ValueError(f"candidate measure {m.name!r}: give max_cut, not scale")
        return self


def read_target(path, regions=None, sectors=None, lead_hours: int | None = None) -> Target:
    """Read and check a target YAML (``aqforecast plan``): limits on configured cities,
    candidate measures as in scenarios with ``max_cut`` bounds."""
    target, lines = load_yaml_model(path, Target, "target")
    _check(target, Path(path), lines, regions, sectors, lead_hours, require_amount=False)
    if regions is not None:
        for i, lim in enumerate(target.limits):
            if lim.cities != ALL:
                for j, c in enumerate(lim.cities):
                    if c not in regions:
                        raise ConfigError(f"{key_location(path, ('limits', i, 'cities', j), lines)}"
                                          f": unknown city {c!r}; expected one of "
                                          f"{', '.join(regions)} or all")
    return target
