"""Strict run-configuration models (pydantic v2).

Every model forbids unknown keys and is frozen. Field names carry their units (``_m``, ``_s``,
``_hours``, ``_pa``). Cross-field checks (nests inside parents, lead <= 15 days, time step vs CFL,
output cadence vs time step) run in :class:`RunConfig`'s validators so a bad file fails before any
work starts. The JSON Schema of :class:`RunConfig` is exported to
``workflow/schemas/config.schema.json`` (``aqforecast schema``; a test keeps it in sync).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .. import species as species_registry
from .localtime import LocalTime, check_timezone

MAX_LEAD_HOURS = 360  # 15 days
MAX_SUBSTEPS = 40  # advection sub-steps per sync step allowed by the CFL check
#: grid spacing range, m (README "WRF grids and projections"): 1 km nests of 3 km parents and
#: 333 m nests of 1 km ones down to the LES limit; up to the coarsest regional WRF grids
DX_MIN_M, DX_MAX_M = 100.0, 150000.0

_STRICT = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class _Model(BaseModel):
    model_config = _STRICT


Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=32)]


class ProjectionConfig(_Model):
    """Map projection shared by all domains, with WRF's names: ``lambert`` (MAP_PROJ = 1;
    standard parallels truelat1, truelat2), ``polar`` stereographic (2; true at truelat1,
    whose sign picks the pole) or ``mercator`` (3; true at truelat1)."""

    kind: Literal["lambert", "polar", "mercator"] = Field(
        default="lambert", description="lambert (WRF MAP_PROJ 1), polar (2) or mercator (3)")
    truelat1: float = Field(ge=-90.0, le=90.0,
                            description="lambert: first standard parallel; polar, mercator: "
                                        "latitude of true scale (polar: its sign picks the "
                                        "pole), deg")
    truelat2: float | None = Field(default=None, ge=-90.0, le=90.0,
                                   description="lambert only: second standard parallel, deg "
                                               "(omitted: tangent cone at truelat1)")
    stand_lon: float = Field(ge=-180.0, le=360.0,
                             description="central meridian (polar: the meridian parallel to "
                                         "the grid's y axis), deg")
    ref_lat: float | None = Field(default=None, ge=-90.0, le=90.0,
                                  description="lambert only: latitude of projection origin "
                                              "(shifts the false northing only; omitted: the "
                                              "outermost domain's centre_lat), deg")

    @model_validator(mode="after")
    def _valid_projection(self):
        t1 = self.truelat1
        t2 = t1 if self.truelat2 is None else self.truelat2
        if self.kind != "lambert":
            extra = [k for k in ("truelat2", "ref_lat") if getattr(self, k) is not None]
            if extra:
                raise ValueError(f"{' and '.join(extra)} apply to kind: lambert only; a "
                                 f"{self.kind} projection has truelat1 and stand_lon")
        if self.kind == "lambert":
            if t1 * t2 < 0:
                raise ValueError(f"lambert: truelat1 = {t1} and truelat2 = {t2} must lie in "
                                 "the same hemisphere")
            if t1 == 0.0 or t2 == 0.0:
                raise ValueError(f"lambert: a standard parallel on the equator (truelat1 = "
                                 f"{t1}, truelat2 = {t2}) is not a cone; use kind: mercator")
            if abs(t1) == 90.0 or abs(t2) == 90.0:
                raise ValueError(f"lambert: a standard parallel at a pole (truelat1 = {t1}, "
                                 f"truelat2 = {t2}) is not a cone; use kind: polar")
        elif self.kind == "polar" and t1 == 0.0:
            raise ValueError("polar: truelat1 = 0 names no pole; give the latitude of true "
                             "scale with the pole's sign (e.g. 60 north, -71 south)")
        elif self.kind == "mercator" and abs(t1) == 90.0:
            raise ValueError(f"mercator: truelat1 = {t1} must lie strictly between -90 and 90")
        return self


class VerticalConfig(_Model):
    """Vertical levels: either ``nz`` stretched levels or explicit ``eta_interfaces``."""

    nz: int | None = Field(default=None, ge=1, le=80, description="number of layers")
    p_top_pa: float = Field(default=10000.0, ge=1000.0, le=50000.0, description="model top, Pa")
    first_layer_m: float = Field(default=30.0, ge=5.0, le=200.0,
                                 description="thickness of the lowest layer, m")
    eta_interfaces: list[float] | None = Field(
        default=None, description="explicit eta interfaces from 1 (surface) to 0 (top)")

    @model_validator(mode="after")
    def _one_of(self):
        if (self.nz is None) == (self.eta_interfaces is None):
            raise ValueError("give exactly one of 'nz' or 'eta_interfaces'")
        if self.eta_interfaces is not None:
            e = self.eta_interfaces
            if len(e) < 2 or abs(e[0] - 1.0) > 1e-9 or abs(e[-1]) > 1e-9:
                raise ValueError("eta_interfaces must run from 1.0 (surface) to 0.0 (top)")
            if any(b >= a for a, b in zip(e, e[1:])):
                raise ValueError("eta_interfaces must decrease strictly")
        return self

    @property
    def n_layers(self) -> int:
        return self.nz if self.nz is not None else len(self.eta_interfaces) - 1


class DomainConfig(_Model):
    """One model domain. The outermost domain is placed by its centre; a nest by its parent."""

    name: Name
    dx_m: float = Field(
        ge=DX_MIN_M, le=DX_MAX_M,
        description="grid spacing, m (100 m .. 150 km: below ~100 m WRF runs as LES and the "
                    "model's 1-D boundary-layer mixing no longer applies; 150 km covers the "
                    "coarsest WRF set-ups in use (e.g. 108 km hemispheric grids), where the "
                    "centre-map-factor cell area still agrees with the exact area to 3e-8)")
    nx: int = Field(ge=4, le=4000, description="cells west-east")
    ny: int = Field(ge=4, le=4000, description="cells south-north")
    centre_lon: float | None = Field(default=None, ge=-180.0, le=360.0)
    centre_lat: float | None = Field(default=None, ge=-90.0, le=90.0)
    parent: Name | None = None
    ratio: int = Field(default=3, ge=1, le=7, description="parent/nest grid ratio")
    i_parent_start: int | None = Field(default=None, ge=0,
                                       description="0-based parent x index of the nest's first cell")
    j_parent_start: int | None = Field(default=None, ge=0,
                                       description="0-based parent y index of the nest's first cell")

    @model_validator(mode="after")
    def _placement(self):
        if self.parent is None:
            if self.centre_lon is None or self.centre_lat is None:
                raise ValueError("the outermost domain needs centre_lon and centre_lat")
            if self.i_parent_start is not None or self.j_parent_start is not None:
                raise ValueError("i/j_parent_start only apply to a nest (set 'parent')")
        else:
            if self.i_parent_start is None or self.j_parent_start is None:
                raise ValueError(f"nest {self.name!r} needs i_parent_start and j_parent_start")
            if self.centre_lon is not None or self.centre_lat is not None:
                raise ValueError(f"nest {self.name!r} is placed by its parent: "
                                 "remove centre_lon/centre_lat")
        return self


class LeadWindow(_Model):
    """Products every ``every_hours`` up to lead ``until_hours``."""

    until_hours: int = Field(ge=1, le=MAX_LEAD_HOURS)
    every_hours: int = Field(ge=1, le=24)
    aggregation: Literal["mean", "instant", "max"] = "mean"


def _default_windows() -> list[LeadWindow]:
    return [LeadWindow(until_hours=72, every_hours=3), LeadWindow(until_hours=168, every_hours=12),
            LeadWindow(until_hours=360, every_hours=24)]


class TimeConfig(_Model):
    """Cycle start, lead and stepping."""

    start: datetime = Field(description="cycle start (UTC), ISO 8601")
    lead_hours: int = Field(ge=1, le=MAX_LEAD_HOURS, description="forecast length, h (<= 360)")
    sync_step_s: int = Field(default=300, ge=10, le=900,
                             description="operator-splitting (synchronisation) step, s")
    cfl: float = Field(default=0.75, gt=0.0, le=1.0, description="max Courant number per sweep")
    max_wind_ms: float = Field(default=40.0, gt=0.0, le=150.0,
                               description="wind speed used for the set-up CFL check, m/s")
    output_every_hours: int = Field(default=1, ge=1, le=24, description="internal output, h")
    windows: list[LeadWindow] = Field(default_factory=_default_windows)
    local_utc_offset_h: float = Field(
        default=8.0, ge=-12.0, le=14.0,
        description="local time = UTC + this many hours, for local calendar days (daily AQI, "
                    "lead_day, scenario city days) and the emission temporal profiles "
                    "(default 8: China Standard Time)")
    timezone: str | None = Field(
        default=None, description="IANA time zone name (e.g. 'Europe/Paris'); when given it "
                                  "wins over local_utc_offset_h and follows daylight-saving time")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str | None) -> str | None:
        return None if v is None else check_timezone(v)

    @property
    def local_time(self) -> LocalTime:
        """The run's local clock (:class:`aqforecast.config.localtime.LocalTime`)."""
        return LocalTime(self.local_utc_offset_h, self.timezone)

    @field_validator("start")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        if v.tzinfo is not None:
            v = v.astimezone(timezone.utc).replace(tzinfo=None)
        return v

    @model_validator(mode="after")
    def _steps(self):
        if 3600 % self.sync_step_s:
            raise ValueError(f"sync_step_s={self.sync_step_s} must divide 3600 s")
        last = 0
        for w in self.windows:
            if w.until_hours <= last:
                raise ValueError("windows: until_hours must increase")
            if (w.until_hours - last) % w.every_hours:
                raise ValueError(f"windows: {w.every_hours} h does not divide the window "
                                 f"{last}..{w.until_hours} h")
            last = w.until_hours
        return self


class ChemistryConfig(_Model):
    mechanism: str = Field(default="grs", description="'grs' (built in) or a path to a KPP .eqn file")
    solver: Literal["rosenbrock", "grs_qssa"] = "rosenbrock"
    rtol: float = Field(default=1e-3, gt=0.0, le=0.1)
    atol_ppb: float = Field(default=1e-4, gt=0.0, le=1.0)
    enabled: bool = True


class TransportConfig(_Model):
    """Transport options."""

    advection_scheme: Literal["walcek", "donor_cell"] = Field(
        default="walcek",
        description="'walcek': monotone Walcek (2000) split sweeps; 'donor_cell': split "
                    "first-order donor cell (linear, more diffusive): source tags then equal "
                    "single-source runs to round-off ('upwind' is accepted as its old name)")

    @field_validator("advection_scheme", mode="before")
    @classmethod
    def _old_name(cls, v):
        return "donor_cell" if v == "upwind" else v


class RegionConfig(_Model):
    name: Name
    geojson: Path = Field(description="polygon file (GeoJSON), relative to base_dir")


class TagConfig(_Model):
    """Source-apportionment tags: (top-level ``regions`` + ``outside``) x sector, plus the
    initial- and boundary-condition tags."""

    enabled: bool = True
    sectors: list[Name] = Field(default_factory=list)
    species: list[str] = Field(default_factory=list, description="tagged species")
    initial_and_boundary_tags: bool = True
    dtype: Literal["float64", "float32"] = Field(
        default="float64",
        description="stored float type of the tag output files (tags_<domain>.nc): float32 "
                    "halves them at ~6e-8 relative rounding per value (sum over tags vs bulk "
                    "~1e-7); the model carries tags in float64")
    transport_precision: Literal["float32", "float64"] = Field(
        default="float32",
        description="float type of the tag fractions during advection (the tagged sweeps' "
                    "largest array): float32 halves their memory traffic at ~1e-7 relative "
                    "error in a tag's share per step; with float64 storage the tags still sum "
                    "to the bulk to float64 round-off (the fractions are renormalised). float64 "
                    "for identities to round-off (tags = single-source runs under donor cell)")
    storage_precision: Literal["float32", "float64"] = Field(
        default="float32",
        description="float type of the tag concentrations the model holds between its "
                    "operators (and in restarts): float32 halves the largest array of a tagged "
                    "run and the memory traffic of the tags' vertical mixing, conversions and "
                    "chemistry apportionment; the tags then sum to the bulk within float32 "
                    "rounding (~2e-7 relative; every step renormalises them to the float64 "
                    "bulk, so the error does not grow), as CAMx and CMAQ-ISAM store them. "
                    "float64 (with transport_precision float64) for identities to round-off")


class MetInput(_Model):
    format: Literal["wrfout"] = "wrfout"
    paths: dict[Name, str] = Field(description="per domain: file glob, relative to base_dir")


class GriddedInventoryInput(_Model):
    """A gridded inventory and how to read it (docs/inventory_formats.md): the native layout
    (one NetCDF file in Mg per cell per period), or ``pattern``: files named by ``path`` with
    ``{species}``, ``{sector}``, ``{month}`` placeholders and ``*`` wildcards (EDGAR, CAMS-GLOB-ANT,
    HTAP, MEIC NetCDF or ESRI ASCII), in any mass-per-cell-per-period or flux units."""

    path: str = Field(description="the file (native) or the file pattern (pattern), relative "
                                  "to base_dir")
    layout: Literal["native", "pattern"] = "native"
    variable: str | list[str] = Field(
        default="{species}", description="pattern: data-variable name pattern(s) with "
                                         "{species}/{sector}, e.g. fluxes, emi_{species}, {sector}")
    sector_dim: str | None = Field(default=None, description="pattern: name of a sector "
                                                             "dimension (default: 'sector' if any)")
    species_dim: str | None = Field(default=None, description="pattern: name of a species "
                                                              "dimension (default: 'species')")
    sector: Name | None = Field(default=None, description="pattern: the sector of files that "
                                                          "name none")
    species: str | None = Field(default=None, description="pattern: the species of files that "
                                                          "name none")
    units: str | None = Field(default=None, description="pattern: units replacing the files' "
                                                        "(ESRI ASCII grids carry none), e.g. "
                                                        "'t month-1' or 'kg m-2 s-1'")
    mapping: Path | None = Field(default=None, description="YAML mapping of the inventory's "
                                                           "species and sectors to the model's")

    @model_validator(mode="after")
    def _layout_keys(self):
        import re

        placeholders = re.compile(r"\{(\w+)\}")
        if self.layout == "native":
            extra = [k for k in ("sector_dim", "species_dim", "sector", "species", "units")
                     if getattr(self, k) is not None] + (
                ["variable"] if self.variable != "{species}" else [])
            if extra:
                raise ValueError(f"{', '.join(extra)} apply to layout: pattern only")
            if placeholders.search(self.path):
                raise ValueError(f"path {self.path!r} has placeholders: use layout: pattern")
            return self
        for text, allowed in [(self.path, ("species", "sector", "month"))] + [
                (v, ("species", "sector"))
                for v in ([self.variable] if isinstance(self.variable, str) else self.variable)]:
            bad = [p for p in placeholders.findall(text) if p not in allowed]
            if bad:
                raise ValueError(f"{text!r}: unknown placeholder(s) "
                                 f"{', '.join('{' + b + '}' for b in bad)}; expected "
                                 f"{', '.join('{' + a + '}' for a in allowed)}")
        if isinstance(self.variable, list) and not self.variable:
            raise ValueError("variable: give at least one pattern")
        return self


class EmissionInput(_Model):
    """Emission sources, each optional (none at all: a run without emissions, with a warning)."""

    gridded: Path | GriddedInventoryInput | None = Field(
        default=None, description="gridded inventory: a native-layout NetCDF path, or "
                                  "{path, layout, variable, mapping, ...}")
    points: Path | None = Field(default=None, description="point-source (stack) CSV")
    areas: Path | None = Field(default=None, description="area-source CSV: id, sector, wkt "
                                                         "(or lon, lat), pollutants in Mg year-1")
    profiles: Path | None = None
    base_year: int = Field(default=2017, ge=1990, le=2100)
    scaling: Path | None = Field(
        default=None,
        description="emission scaling table (CSV or NetCDF: region, sector, pollutant, factor"
                    "[, start, end]); the forecast's --scaling replaces it")

    @property
    def has_sources(self) -> bool:
        """Whether any emission source (gridded, points, areas) is configured."""
        return any(x is not None for x in (self.gridded, self.points, self.areas))


class ObservationSource(_Model):
    """One station source of the observation stage (aqforecast.observations.collect)."""

    path: str = Field(description="file or glob pattern, relative to base_dir")
    format: Literal["cnemc", "prsa", "shanghai", "generic"] = Field(
        description="cnemc / prsa / shanghai: the national layouts (local time); generic: "
                    "station,time,species,value,units[,lon,lat] with ISO 8601 times")
    species: str | None = Field(default=None, description="species of single-species CNEMC "
                                                          "files whose name does not say it")
    encoding: str | None = Field(default=None, description="text encoding (default: detected)")
    utc_offset_hours: float = Field(default=8.0, ge=-14.0, le=14.0,
                                    description="local time of the national layouts (UTC+8)")


class SatelliteInput(_Model):
    """TROPOMI L2 NO2 granules of the observation stage (aqforecast.observations.collect)."""

    path: str = Field(description="file or glob pattern of TROPOMI L2 NO2 granules, relative "
                                  "to base_dir")
    qa_min: float = Field(default=0.75, ge=0.0, le=1.0,
                          description="keep pixels with qa_value >= qa_min (PUM: 0.75)")
    window_hours: int | None = Field(default=None, ge=1, le=72,
                                     description="overpass window [cycle - window_hours, cycle) "
                                                 "(default: the stations' window_hours)")
    n_sub: int = Field(default=10, ge=2, le=50, description="sub-samples per pixel side for "
                                                            "the pixel-cell overlap")
    representativeness_relative: float = Field(
        default=0.15, ge=0.0, le=1.0,
        description="superobs representativeness error: this x |column| x (1 - coverage)")
    min_coverage: float = Field(default=0.0, ge=0.0, le=1.0,
                                description="drop superobservations covering less of the cell")


class ObservationInput(_Model):
    sources: list[ObservationSource] = Field(
        default_factory=list, description="station files gathered by `aqforecast observations`")
    satellite: SatelliteInput | None = Field(
        default=None, description="TROPOMI NO2 granules: superobservations in satellite_no2.nc")
    window_hours: int = Field(default=6, ge=1, le=72,
                              description="assimilation window: the hourly means that began in "
                                          "[cycle - window_hours, cycle)")
    station_coords: Path | None = None
    encoding: str | None = Field(
        default=None,
        description="text encoding of the station files (e.g. gb18030, utf-16); default: by "
                    "byte-order mark, else UTF-8, else GB18030")

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v):
        if v is not None:
            import codecs

            try:
                codecs.lookup(v)
            except LookupError:
                raise ValueError(f"unknown text encoding {v!r} (e.g. utf-8, gb18030, "
                                 f"utf-16)") from None
        return v


class BoundaryInput(_Model):
    kind: Literal["profile", "file"] = "profile"
    path: Path | None = None

    @model_validator(mode="after")
    def _need_path(self):
        if self.kind == "file" and self.path is None:
            raise ValueError("boundary kind 'file' needs 'path'")
        return self


class InputsConfig(_Model):
    met: MetInput
    emissions: EmissionInput = Field(default_factory=EmissionInput)
    observations: ObservationInput = Field(default_factory=ObservationInput)
    boundary: BoundaryInput = Field(default_factory=BoundaryInput)
    restart_dir: Path | None = Field(default=None, description="previous cycle (warm start)")


AQI_STANDARDS = {"hj633-2026": "HJ633-2026", "hj633-2012": "HJ633-2012", "epa-2024": "EPA-2024",
                 "hj633": None}


class ProductsConfig(_Model):
    """The products stage: which air-quality index the AQI tables, maps and files use."""

    aqi_standard: Literal["hj633-2026", "hj633-2012", "epa-2024", "hj633"] = Field(
        default="hj633-2026",
        description="hj633-2026: China HJ 633-2026 (in force from 2026-03-01; a warning for "
                    "earlier dates); hj633-2012: HJ 633-2012 (in force 2016-01-01 .. "
                    "2026-02-28); hj633: the HJ 633 version in force on each local date; "
                    "epa-2024: US EPA AQI (40 CFR 58 App. G as revised 2024). Dates before "
                    "2016-01-01 get a warning with any HJ 633 choice")

    @property
    def standard(self) -> str | None:
        """Internal name of the standard (:data:`aqforecast.products.aqi.STANDARDS`), None for
        the HJ 633 version in force on each date."""
        return AQI_STANDARDS[self.aqi_standard]


class OutputConfig(_Model):
    dir: Path = Path("results")
    compression_level: int = Field(default=4, ge=0, le=9)
    dtype: Literal["float32", "float64"] = Field(
        default="float32",
        description="stored float type of conc_<domain>.nc: float32 (~6e-8 relative rounding "
                    "per value) or float64 (identities checkable on the files)")
    levels: list[int] | None = Field(
        default=None, description="model levels (0 = ground) in conc files; null = all")
    tag_levels: list[int] = Field(default_factory=lambda: [0],
                                  description="model levels in tags files")
    tag_every_hours: int = Field(default=1, ge=1, le=24, description="tags output cadence, h")
    write_restart: bool = True
    restart_every_hours: int = Field(default=6, ge=1, le=24,
                                     description="restart (and output flush) cadence, h")
    restart_keep_hours: list[int] = Field(
        default_factory=lambda: [24],
        description="lead hours whose restarts are kept when a later one is written (default "
                    "24: the next daily cycle's warm start); the latest restart is always kept "
                    "(for --resume); [] keeps only the latest")

    @field_validator("levels", "tag_levels")
    @classmethod
    def _levels(cls, v):
        if v is not None:
            if not v or any(k < 0 for k in v) or sorted(set(v)) != list(v):
                raise ValueError("levels must be increasing non-negative level indices")
        return v


class ParallelConfig(_Model):
    process_grid: tuple[int, int] | None = Field(
        default=None, description="(py, px) MPI process grid; null = choose automatically")
    threads: int = Field(default=0, ge=0, le=1024,
                         description="kernel threads per MPI rank (numba); 0 = all cores "
                                     "(NUMBA_NUM_THREADS); more than the cores available is "
                                     "capped there")
    nests_beside_parents: bool = Field(
        default=False, description="step each nest on another thread one sync step behind its "
                                   "parent (bit for bit the step-by-step run; one MPI rank "
                                   "only); measured no faster on 2 cores (README, Speed)")


ASSIMILATED = ("PM25", "PM10", "O3", "NO2", "SO2", "CO")


class AssimilationConfig(_Model):
    """Analysis of the initial state from station observations (``aqforecast assimilate``)."""

    method: Literal["oi", "letkf"] = Field(
        default="oi", description="oi: optimal interpolation; letkf: localized ensemble "
                                  "transform Kalman filter (needs an ensemble of backgrounds)")
    species: list[Literal["PM25", "PM10", "O3", "NO2", "SO2", "CO"]] = Field(
        default_factory=lambda: ["PM25", "O3", "NO2"],
        description="observed quantities analysed (obs.nc names); PM25 scales every PM2.5 "
                    "component, NO2 also NO (by ratio)")
    length_km: float = Field(default=30.0, gt=0.0, le=2000.0,
                             description="Gaspari-Cohn half-width of the background error "
                                         "correlation (zero beyond twice this)")
    background_error: dict[str, float] = Field(
        default_factory=lambda: {"PM25": 0.5, "PM10": 0.5, "O3": 0.3, "NO2": 0.5, "SO2": 0.6,
                                 "CO": 0.3},
        description="background error standard deviation relative to the background value")
    gross_error_sigmas: float = Field(default=4.0, gt=0.0,
                                      description="reject an observation whose |O-B| exceeds "
                                                  "this many sqrt(HBH^T + R)")
    max_ratio: float = Field(default=10.0, gt=1.0,
                             description="analysis / background ratio clipped to "
                                         "[1/max_ratio, max_ratio]")
    inflation: float = Field(default=1.05, ge=1.0, le=2.0, description="LETKF multiplicative "
                                                                        "inflation (with "
                                                                        "inflation_adaptive: "
                                                                        "the prior of a first "
                                                                        "cycle)")
    inflation_adaptive: bool = Field(
        default=False,
        description="LETKF: estimate the multiplicative inflation per domain and quantity from "
                    "the innovations of the analysis (Li et al. 2009, QJRMS 135, 523: rho_o = "
                    "(d^T R^-1 d - p) / tr(R^-1/2 H P^b H^T R^-1/2)) with a Gaussian prior "
                    "(Miyoshi 2011, MWR 139, 1519), bounded to [1, inflation_max], and apply it; "
                    "the prior is the previous analysis' value (assimilate --inflation-prior) "
                    "or `inflation`. OI: the same estimate with the static B (a factor of its "
                    "variances; prior: the previous analysis' value or 1). Off: the estimate "
                    "is only reported (statistics.csv, inflation.json)")
    inflation_max: float = Field(default=3.0, ge=1.0, le=10.0,
                                 description="upper bound of the adaptive inflation")
    inflation_prior_sd: float = Field(
        default=0.5, ge=0.0, le=10.0,
        description="standard deviation of the adaptive inflation's Gaussian prior (0: the "
                    "prior is kept; cycling NWP uses ~0.04 over many cycles, a single analysis "
                    "needs more to move)")
    rtps_alpha: float = Field(
        default=0.0, ge=0.0, le=1.0,
        description="LETKF relaxation to prior spread (Whitaker & Hamill 2012, MWR 140, "
                    "3078): the members' analysis spread becomes (1 - a) sigma_a + a sigma_b "
                    "at every point; 0: off. Changes the members written for the next cycle, "
                    "not the control's analysis (except where members are clipped at 0)")
    mixed_layer_hours: float = Field(
        default=24.0, ge=0.0, le=72.0,
        description="the surface analysis ratio applies in full through the highest boundary "
                    "layer of the last this many hours up to T (the residual layer of the "
                    "previous afternoon's mixed layer, whose air the surface saw and which "
                    "mixes down again the next morning); 0: the boundary layer at T only")
    vertical_decay: float = Field(
        default=0.3, ge=0.0, le=2.0,
        description="above that depth h the log of the ratio decays as exp(-(z - h) / "
                    "(vertical_decay h)) (an entrainment-zone scale, a few tenths of h), cut "
                    "below 1 %; 0: a sharp cut at h")
    ensemble_ic_sigma: dict[str, float] = Field(
        default_factory=dict,
        description="`aqforecast ensemble`: standard deviation of ln(initial-state factor) per "
                    "analysed quantity (PM25: every PM2.5 component, NO2: NO too, O3); each "
                    "member starts from the control's initial state x exp(sigma w f), f a "
                    "smooth unit-variance random field centred over the members, w the "
                    "analysis' vertical weights; {} or 0: no initial-state perturbation "
                    "(`--ic-sigma background` takes sqrt(ln(1 + background_error^2)))")
    ensemble_ic_length_km: float | None = Field(
        default=None, gt=0.0, le=2000.0,
        description="Gaussian correlation scale L (km) of the initial-state perturbation "
                    "field, corr(d) = exp(-d^2 / (2 L^2)); null: sqrt(3/10) length_km, the "
                    "Gaussian the analysis' Gaspari-Cohn correlation approximates")
    ensemble_emissions: bool = Field(
        default=True, description="`aqforecast ensemble`: also perturb the members' emissions "
                                  "(lognormal factors, inversion.sigma_ln)")

    @model_validator(mode="after")
    def _inflation_bounds(self):
        if self.inflation_max < self.inflation:
            raise ValueError(f"inflation_max {self.inflation_max} < inflation "
                             f"{self.inflation}")
        return self

    @field_validator("ensemble_ic_sigma")
    @classmethod
    def _ic_sigma(cls, v):
        bad = sorted(set(v) - set(ASSIMILATED))
        if bad:
            raise ValueError(f"ensemble_ic_sigma: unknown observed quantities {bad}; expected "
                             f"{list(ASSIMILATED)}")
        if any(not 0.0 <= x <= 2.0 for x in v.values()):
            raise ValueError("ensemble_ic_sigma: sigma of ln(factor) must be in [0, 2]")
        return v

    @field_validator("background_error")
    @classmethod
    def _known(cls, v):
        bad = sorted(set(v) - set(ASSIMILATED))
        if bad:
            raise ValueError(f"unknown observed quantities {bad}; expected {list(ASSIMILATED)}")
        if any(not 0.0 < x <= 5.0 for x in v.values()):
            raise ValueError("relative background errors must be in (0, 5]")
        return v


class InversionConfig(_Model):
    """The daily Kalman-filter emission inversion (``aqforecast invert``)."""

    quantities: list[Literal["NO2", "SO2", "PM25", "PM10", "CO"]] = Field(
        default_factory=lambda: ["NO2", "SO2", "PM25"],
        description="observed quantities used (O3 is not: its tags are not sensitivities)")
    sigma_ln: dict[str, float] = Field(
        default_factory=lambda: {"NOx": 0.4, "SO2": 0.5, "PM25": 0.5, "PMC": 0.6, "NH3": 0.6,
                                 "NMVOC": 0.6, "CO": 0.4},
        description="prior standard deviation of ln(factor) per pollutant (base inventory)")
    length_km: float = Field(default=50.0, gt=0.0,
                             description="e-folding distance of the prior correlation between "
                                         "regions (centroid distance)")
    relaxation: float = Field(default=0.7, ge=0.0, le=1.0,
                              description="yesterday's posterior relaxed toward the base "
                                          "inventory: mean = relaxation x posterior")
    q_sigma_ln: float | None = Field(default=0.1, ge=0.0, le=2.0,
                                     description="error growth per day (added to ln-factor "
                                                 "sigma); null: sigma_ln sqrt(1 - "
                                                 "relaxation^2), the base sigma_ln as the "
                                                 "stationary spread")
    outlier_sigmas: float = Field(default=3.0, gt=0.0,
                                  description="2-pass rejection of |residual| > k sqrt(S_ii)")
    iterations: int = Field(default=20, ge=1, le=100,
                            description="Gauss-Newton updates at most, the tags relinearised "
                                        "at the current factors (dy/d ln f = tag x f / f_run); "
                                        "1: the single linear update about the prior")
    pollutant_correlation: float = Field(
        default=0.0, ge=0.0, lt=1.0,
        description="prior correlation of the ln-factors of different pollutants of the same "
                    "region x sector (times the regions' spatial correlation): the share of "
                    "the inventory error that is activity data, common to every pollutant a "
                    "source emits, rather than pollutant-specific emission factors; 0: "
                    "independent pollutants")
    co_emitted: list[Literal["SO2", "NOx", "CO", "NMVOC", "NH3", "PM25", "PMC"]] = Field(
        default_factory=list,
        description="pollutants no observed quantity is sensitive to (e.g. [NMVOC, NH3, CO]) "
                    "estimated with the observed ones of the same region x sector through "
                    "pollutant_correlation (it must be > 0): their factors follow the observed "
                    "pollutants' by the prior regression, with a posterior sigma_ln")

    growth_correlated: bool = Field(
        default=False,
        description="the daily error growth of the cycled prior correlated like the base prior "
                    "(regions, pollutant_correlation), so that the cycled prior keeps those "
                    "correlations; false: uncorrelated growth, under which they fade by "
                    "relaxation^2 a cycle")

    @model_validator(mode="after")
    def _co_emitted_needs_correlation(self):
        if self.co_emitted and self.pollutant_correlation <= 0.0:
            raise ValueError("inversion.co_emitted needs inversion.pollutant_correlation > 0: "
                             "without it the observations say nothing about those pollutants")
        if len(set(self.co_emitted)) != len(self.co_emitted):
            raise ValueError("inversion.co_emitted: a pollutant is listed twice")
        return self


class VerificationConfig(_Model):
    """Independent verification: stations kept out of every stage that learns from
    observations (``aqforecast assimilate``, ``aqforecast invert``) so that the scores at them
    measure skill, not the fit to assimilated data."""

    withheld_stations: list[str] = Field(
        default_factory=list,
        description="station names (as in obs.nc) never assimilated nor used by the inversion "
                    "or a bias correction; scores are computed on them")

    @field_validator("withheld_stations")
    @classmethod
    def _unique(cls, v):
        if len(set(v)) != len(v):
            raise ValueError("withheld_stations: a station is listed twice")
        return v


class RunConfig(_Model):
    """The whole run: one daily cycle of the forecast system."""

    name: Name = "aqforecast"
    base_dir: Path = Field(default=Path("."),
                           description="base for relative paths, relative to the config file")
    projection: ProjectionConfig
    vertical: VerticalConfig
    domains: list[DomainConfig] = Field(min_length=1)
    time: TimeConfig
    species: list[str] = Field(min_length=1, description="transported species")
    chemistry: ChemistryConfig = Field(default_factory=ChemistryConfig)
    transport: TransportConfig = Field(default_factory=TransportConfig)
    regions: list[RegionConfig] = Field(
        default_factory=list,
        description="named regions (polygons): source tags, emission scaling, scenarios, the "
                    "inversion and the city tables; everything else is the region 'outside'")
    tags: TagConfig = Field(default_factory=TagConfig)
    inputs: InputsConfig
    outputs: OutputConfig = Field(default_factory=OutputConfig)
    products: ProductsConfig = Field(default_factory=ProductsConfig)
    parallel: ParallelConfig = Field(default_factory=ParallelConfig)
    assimilation: AssimilationConfig = Field(default_factory=AssimilationConfig)
    inversion: InversionConfig = Field(default_factory=InversionConfig)
    verification: VerificationConfig = Field(default_factory=VerificationConfig)

    @model_validator(mode="before")
    @classmethod
    def _regions_at_top(cls, data):
        """``tags.regions`` (the layout before regions served scaling and scenarios too) is
        moved to the top-level ``regions``; giving both is an error."""
        if isinstance(data, dict) and isinstance(data.get("tags"), dict) \
                and "regions" in data["tags"]:
            if "regions" in data:
                raise ValueError("regions are given twice (top-level 'regions' and "
                                 "'tags.regions'): keep the top-level 'regions' only")
            data = dict(data)
            tags = dict(data["tags"])
            data["regions"] = tags.pop("regions")
            data["tags"] = tags
        return data

    @field_validator("species")
    @classmethod
    def _known_species(cls, v: list[str]) -> list[str]:
        for s in v:
            if not species_registry.is_known(s):
                raise ValueError(f"unknown species {s!r}; known: "
                                 f"{', '.join(species_registry.names())}")
        if len(set(v)) != len(v):
            raise ValueError("species listed twice")
        return v

    @model_validator(mode="after")
    def _cross_checks(self):
        names = [d.name for d in self.domains]
        if len(set(names)) != len(names):
            raise ValueError(f"domain names must be unique, got {names}")
        by_name = {d.name: d for d in self.domains}
        roots = [d for d in self.domains if d.parent is None]
        if len(roots) != 1:
            raise ValueError("exactly one domain must have no parent (the outermost)")
        for d in self.domains:
            if d.parent is None:
                continue
            if d.parent not in by_name:
                raise ValueError(f"domain {d.name!r}: parent {d.parent!r} is not defined")
            p = by_name[d.parent]
            if names.index(d.parent) > names.index(d.name):
                raise ValueError(f"domain {d.name!r} must come after its parent {d.parent!r}")
            if abs(d.dx_m * d.ratio - p.dx_m) > 1e-6 * p.dx_m:
                raise ValueError(f"domain {d.name!r}: dx_m*ratio = {d.dx_m * d.ratio:g} m must "
                                 f"equal parent dx_m = {p.dx_m:g} m")
            if d.nx % d.ratio or d.ny % d.ratio:
                raise ValueError(f"domain {d.name!r}: nx={d.nx}, ny={d.ny} must be multiples of "
                                 f"ratio {d.ratio}")
            i1 = d.i_parent_start + d.nx // d.ratio
            j1 = d.j_parent_start + d.ny // d.ratio
            if d.i_parent_start < 1 or d.j_parent_start < 1 or i1 > p.nx - 1 or j1 > p.ny - 1:
                raise ValueError(
                    f"domain {d.name!r} must lie inside its parent {p.name!r} with at least one "
                    f"parent cell to spare on every side: it covers parent cells x "
                    f"{d.i_parent_start}..{i1 - 1}, y {d.j_parent_start}..{j1 - 1}; the parent "
                    f"has x 0..{p.nx - 1}, y 0..{p.ny - 1}")
        root = roots[0]
        if self.projection.kind == "polar" and root.centre_lat * self.projection.truelat1 < 0:
            raise ValueError(
                f"domain {root.name!r}: centre_lat = {root.centre_lat} lies in the other "
                f"hemisphere than the polar projection's pole (truelat1 = "
                f"{self.projection.truelat1}); give truelat1 the sign of the domain's pole")
        # CFL: advection sub-steps needed per sync step at max_wind_ms on the finest grid
        dx_min = min(d.dx_m for d in self.domains)
        nsub = math.ceil(self.time.max_wind_ms * self.time.sync_step_s / (self.time.cfl * dx_min))
        if nsub > MAX_SUBSTEPS:
            raise ValueError(
                f"time.sync_step_s={self.time.sync_step_s} s is too long for dx={dx_min:g} m: a "
                f"{self.time.max_wind_ms:g} m/s wind needs {nsub} advection sub-steps at CFL "
                f"{self.time.cfl} (max {MAX_SUBSTEPS}); use sync_step_s <= "
                f"{int(MAX_SUBSTEPS * self.time.cfl * dx_min / self.time.max_wind_ms)}")
        if self.time.windows[-1].until_hours < self.time.lead_hours:
            raise ValueError(f"time.windows end at {self.time.windows[-1].until_hours} h, before "
                             f"lead_hours={self.time.lead_hours}")
        for dname in names:
            if dname not in self.inputs.met.paths:
                raise ValueError(f"inputs.met.paths has no entry for domain {dname!r}")
        for extra in self.inputs.met.paths:
            if extra not in by_name:
                raise ValueError(f"inputs.met.paths names unknown domain {extra!r}")
        for s in self.tags.species:
            if s not in self.species:
                raise ValueError(f"tags.species: {s!r} is not in the transported species")
        nz = self.vertical.n_layers
        for key in ("levels", "tag_levels"):
            lv = getattr(self.outputs, key)
            if lv is not None and lv[-1] >= nz:
                raise ValueError(f"outputs.{key}: level {lv[-1]} does not exist ({nz} layers)")
        rnames = [r.name for r in self.regions]
        if len(set(rnames)) != len(rnames):
            raise ValueError(f"regions: names must be unique, got {rnames}")
        if "outside" in rnames:
            raise ValueError("regions: 'outside' is reserved for everything outside the regions")
        return self

    @property
    def domain_names(self) -> list[str]:
        return [d.name for d in self.domains]

    def domain(self, name: str) -> DomainConfig:
        for d in self.domains:
            if d.name == name:
                return d
        raise KeyError(f"no domain {name!r}; domains: {self.domain_names}")
