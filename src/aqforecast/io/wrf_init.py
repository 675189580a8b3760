"""A run configuration on the grids of a WRF run: ``aqforecast init --from-wrfout`` (MCIP's job).

What it owns: reading a wrfout file (and its nests' files) for the grid and run description, and
writing a YAML config whose domains are the WRF grids, valid as written
(:func:`aqforecast.config.load_config`, ``aqforecast validate``). Nothing is interpolated: the model
then runs on WRF's own cells (:mod:`aqforecast.met` takes the file's fields as they are).

From the file (WRF global attributes and variables):

* ``projection`` from MAP_PROJ (1 lambert, 2 polar, 3 mercator; 6 lat-lon is refused), TRUELAT1,
  TRUELAT2 (Lambert), STAND_LON, MOAD_CEN_LAT (else CEN_LAT; Lambert origin);
* each domain's ``dx_m`` from DX (= DY), ``nx``/``ny`` from the file's ``west_east``/``south_north``
  dimensions (WEST-EAST_GRID_DIMENSION - 1 for an uncropped file), the outermost domain's centre
  from the grid fitted to XLAT/XLONG (CEN_LAT/CEN_LON describe the uncropped domain), and a nest's
  placement from its file's I_PARENT_START/J_PARENT_START (WRF: 1-based parent cell of the nest's
  south-west corner; ours: 0-based, so minus 1, minus the ``--window`` offset) and
  PARENT_GRID_RATIO; domains are named ``d<GRID_ID>`` as WRF names its files;
* ``vertical`` from ZNW (eta at w levels) and P_TOP;
* ``time.start`` = the first of the file's Times, ``lead_hours`` = the whole hours every domain's
  files cover from there; ``sync_step_s`` = the longest divisor of 3600 s up to 900 s that needs at
  most half the allowed advection sub-steps at ``max_wind_ms`` on the finest grid;
* ``inputs.met.paths`` = the given files (absolute, or relative to the config's directory when
  they lie below it; ``base_dir: .``).

Defaults: the sample case's species and chemistry, no regions, tags off, no emissions (the
forecast then warns), profile boundaries. ``--window I0 J0 NX NY`` keeps NX x NY cells of the
outermost WRF grid from its 0-based cell (I0, J0); nests must lie inside the window with one
window cell to spare on every side.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import yaml

from ..config import ConfigError, RunConfig
from ..config.models import DX_MAX_M, DX_MIN_M, MAX_LEAD_HOURS, MAX_SUBSTEPS
from .netcdf import InputFileError, atomic_path
from .wrf import REQUIRED_CTM, WrfOutput

__all__ = ["DEFAULT_SPECIES", "choose_sync_step", "config_from_wrfout",
           "write_config_from_wrfout"]

log = logging.getLogger(__name__)

#: transported species and chemistry of the sample case (config/config.yaml)
DEFAULT_SPECIES = ["NO", "NO2", "O3", "ROC", "HNO3", "H2O2", "SO2", "NH3", "CO", "SO4", "NO3",
                   "NH4", "PPM25", "PPM10"]
DEFAULT_CHEMISTRY = {"mechanism": "grs", "solver": "rosenbrock", "rtol": 1.0e-3}
#: what the init command needs of a wrfout file (the forecast needs REQUIRED_CTM)
_INIT_VARIABLES = ("Times", "XLAT", "XLONG")
_MAX_WIND_MS = 40.0
_CFL = 0.75


def choose_sync_step(dx_min: float, max_wind_ms: float = _MAX_WIND_MS, cfl: float = _CFL) -> int:
    """Longest synchronisation step (s; a divisor of 3600, 10..900) whose advection needs at most
    ``MAX_SUBSTEPS // 2`` sub-steps at ``max_wind_ms`` and Courant number ``cfl`` on ``dx_min``:
    half the headroom of the config's CFL check, so stronger winds than assumed still pass."""
    limit = (MAX_SUBSTEPS // 2) * cfl * dx_min / max_wind_ms
    steps = [s for s in range(10, 901) if 3600 % s == 0 and s <= limit]
    return max(steps) if steps else 10


def _f32(v) -> float:
    """A float32 file value as the shortest decimal that reads back to it (30.0, not 30.00000)."""
    return float(str(np.float32(v)))


class _Domain:
    """One WRF domain being turned into a config domain."""

    def __init__(self, path: str, role: str):
        self.path = path
        self.role = role
        self.wo = WrfOutput(path, required=_INIT_VARIABLES)
        src = self.wo.paths[0]
        self.kind = self.wo.projection_kind
        self.grid_id = self.wo.attribute("GRID_ID", int) if "GRID_ID" in self.wo.attrs else 1
        self.name = f"d{self.grid_id:02d}"
        self.dx = self.wo.attribute("DX")
        if not DX_MIN_M <= self.dx <= DX_MAX_M:
            raise InputFileError(f"{src}: DX = {self.dx:g} m lies outside the model's range "
                                 f"{DX_MIN_M:g} m .. {DX_MAX_M / 1000:g} km (README: WRF grids "
                                 "and projections)")
        if len(self.wo) == 0:
            raise InputFileError(f"{src}: variable Times holds no time")
        missing = [v for v in REQUIRED_CTM if not self.wo.has(v)]
        if missing:
            log.warning("%s lacks %s: the config is written, but `aqforecast validate` and the "
                        "forecast need these variables", src, ", ".join(missing))
        self.grid = self.wo.model_grid(self.name)
        _check_fit(self.grid, self.wo.static.lon, self.wo.static.lat, src)

    def close(self):
        self.wo.close()


def _check_fit(grid, lon, lat, src, j0: int = 0, i0: int = 0) -> float:
    """Largest distance (m) between ``grid``'s cell centres and XLAT/XLONG from cell (j0, i0);
    an InputFileError when it exceeds 5 % of dx (the file's XLAT/XLONG are not this grid)."""
    glon, glat = grid.lonlat
    wl = lon[j0:j0 + grid.ny, i0:i0 + grid.nx]
    wa = lat[j0:j0 + grid.ny, i0:i0 + grid.nx]
    dlon = (wl - glon + 180.0) % 360.0 - 180.0
    dist = float(np.max(np.hypot(dlon * np.cos(np.deg2rad(glat)), wa - glat)) * 111195.0)
    if dist > 0.05 * grid.dx:
        raise InputFileError(f"{src}: XLAT/XLONG lie up to {dist:.0f} m from a regular "
                             f"{grid.kind} grid of DX = {grid.dx:g} m on the file's projection "
                             "attributes (MAP_PROJ, TRUELAT1/2, STAND_LON)")
    return dist


def _same_projection(parent: _Domain, nest: _Domain) -> None:
    a, b = parent.grid, nest.grid
    diffs = []
    if a.kind != b.kind:
        diffs.append(f"MAP_PROJ {b.map_proj} vs {a.map_proj}")
    for key in ("truelat1", "truelat2", "stand_lon"):
        if abs(getattr(a, key) - getattr(b, key)) > 1e-3:
            diffs.append(f"{key.upper()} {getattr(b, key)} vs {getattr(a, key)}")
    if diffs:
        raise InputFileError(f"{nest.wo.paths[0]}: the nest's projection differs from its "
                             f"parent's ({parent.wo.paths[0]}): " + "; ".join(diffs))


def _place_nest(nest: _Domain, parent: _Domain, parent_grid, offset: tuple[int, int]) -> dict:
    """The config entry of ``nest`` inside ``parent_grid`` (the parent as configured, windowed
    by ``offset`` = (i0, j0) when it is the outermost domain)."""
    src = nest.wo.paths[0]
    ratio = nest.wo.attribute("PARENT_GRID_RATIO", int)
    if ratio < 1 or abs(nest.dx * ratio - parent.dx) > 1e-3 * parent.dx:
        raise InputFileError(f"{src}: DX = {nest.dx:g} m x PARENT_GRID_RATIO = {ratio} does not "
                             f"give the parent's DX = {parent.dx:g} m ({parent.wo.paths[0]})")
    nx, ny = nest.grid.nx, nest.grid.ny
    if nx % ratio or ny % ratio:
        raise InputFileError(f"{src}: the nest's {nx} x {ny} cells are not multiples of "
                             f"PARENT_GRID_RATIO = {ratio}")
    i_start = nest.wo.attribute("I_PARENT_START", int) - 1 - offset[0]
    j_start = nest.wo.attribute("J_PARENT_START", int) - 1 - offset[1]
    i1, j1 = i_start + nx // ratio, j_start + ny // ratio
    if i_start < 1 or j_start < 1 or i1 > parent_grid.nx - 1 or j1 > parent_grid.ny - 1:
        win = " (after --window)" if offset != (0, 0) else ""
        raise InputFileError(
            f"{src}: I_PARENT_START/J_PARENT_START = {i_start + 1 + offset[0]}/"
            f"{j_start + 1 + offset[1]} with {nx} x {ny} cells at ratio {ratio} cover parent "
            f"{parent.name} cells x {i_start}..{i1 - 1}, y {j_start}..{j1 - 1}{win}; a nest must "
            f"lie inside its parent's 0..{parent_grid.nx - 1} x 0..{parent_grid.ny - 1} cells "
            "with one cell to spare on every side")
    child = parent_grid.nest(nest.name, i_start, j_start, nx, ny, ratio).grid
    _check_fit(child, nest.wo.static.lon, nest.wo.static.lat, src)
    return {"name": nest.name, "parent": parent.name, "ratio": ratio, "dx_m": nest.dx,
            "nx": nx, "ny": ny, "i_parent_start": i_start, "j_parent_start": j_start}


def _vertical(root: _Domain) -> dict:
    st = root.wo.static
    p_top = _f32(st.p_top)
    if root.wo.has("ZNW") and np.all(np.isfinite(st.eta_w)):
        eta = [_f32(e) for e in st.eta_w]
        return {"eta_interfaces": eta, "p_top_pa": p_top}
    nz = root.wo.nz
    log.warning("%s has no ZNW/P_TOP: vertical set to %d stretched layers up to %g Pa; edit "
                "vertical to WRF's eta levels", root.wo.paths[0], nz, p_top)
    return {"nz": nz, "p_top_pa": p_top}


def _met_path(path: str, config_dir: Path) -> str:
    """``path`` relative to the config's directory when it lies below it, else absolute."""
    p = Path(os.path.abspath(path))
    try:
        return str(p.relative_to(config_dir.resolve()))
    except ValueError:
        return str(p)


def config_from_wrfout(wrfout: str | os.PathLike, nests: Sequence[str | os.PathLike] = (),
                       window: Sequence[int] | None = None,
                       config_dir: str | os.PathLike = ".") -> dict:
    """The run configuration (a dict, valid for :class:`~aqforecast.config.RunConfig`) on the
    grid of ``wrfout`` (a file or glob of the outermost domain), with one nest per file of
    ``nests``; ``window`` = (i0, j0, nx, ny) keeps that block of the outermost grid. Met paths
    are written relative to ``config_dir`` where they lie below it. Raises
    :class:`~aqforecast.io.InputFileError` naming the file and attribute."""
    config_dir = Path(config_dir)
    doms: list[_Domain] = []
    try:
        root = _Domain(str(wrfout), "outermost")
        doms.append(root)
        for n in nests:
            doms.append(_Domain(str(n), "nest"))
        return _build(doms, window, config_dir)
    finally:
        for d in doms:
            d.close()


def _build(doms: list[_Domain], window, config_dir: Path) -> dict:
    root, nests = doms[0], sorted(doms[1:], key=lambda d: d.grid_id)
    src = root.wo.paths[0]
    grid = root.grid
    offset = (0, 0)
    if window is not None:
        i0, j0, nx, ny = (int(v) for v in window)
        if i0 < 0 or j0 < 0 or nx < 4 or ny < 4 or i0 + nx > grid.nx or j0 + ny > grid.ny:
            raise InputFileError(f"{src}: --window {i0} {j0} {nx} {ny} (I0 J0 NX NY, 0-based "
                                 f"cells, NX, NY >= 4) does not fit the file's {grid.nx} x "
                                 f"{grid.ny} cells")
        grid = grid.with_placement(root.name, nx, ny, grid.dx, grid.x0 + i0 * grid.dx,
                                   grid.y0 + j0 * grid.dx)
        offset = (i0, j0)
    if grid.nx < 4 or grid.ny < 4:
        raise InputFileError(f"{src}: {grid.nx} x {grid.ny} cells; the model needs at least "
                             "4 x 4")
    by_id = {root.grid_id: (root, grid)}
    domains = []
    centre_lon, centre_lat = grid.centre_lonlat
    domains.append({"name": root.name, "dx_m": root.dx, "nx": grid.nx, "ny": grid.ny,
                    "centre_lon": centre_lon, "centre_lat": centre_lat})
    for nest in nests:
        if nest.grid_id in by_id:
            raise InputFileError(f"{nest.wo.paths[0]}: GRID_ID = {nest.grid_id} is given twice")
        pid = nest.wo.attribute("PARENT_ID", int)
        if pid not in by_id:
            raise InputFileError(f"{nest.wo.paths[0]}: PARENT_ID = {pid} is none of the given "
                                 f"domains (GRID_ID {sorted(by_id)}); give the parent's file "
                                 "with --from-wrfout or --nest")
        parent, parent_grid = by_id[pid]
        _same_projection(root, nest)
        entry = _place_nest(nest, parent, parent_grid,
                            offset if parent is root else (0, 0))
        domains.append(entry)
        by_id[nest.grid_id] = (nest, parent_grid.nest(
            nest.name, entry["i_parent_start"], entry["j_parent_start"], entry["nx"],
            entry["ny"], entry["ratio"]).grid)

    # times: from the outermost domain's first time, as far as every domain's files reach
    start = root.wo.times[0]
    for d in nests:
        if d.wo.times[0] > start:
            raise InputFileError(f"{d.wo.paths[0]}: Times begin at {d.wo.times[0]}, after the "
                                 f"outermost domain's start {start}")
    end = min(d.wo.times[-1] for d in doms)
    lead = int((end - start) // np.timedelta64(1, "h"))
    if lead < 1:
        raise InputFileError(f"{src}: Times cover {start} .. {end}; a run needs at least 1 h "
                             "(two times an hour or more apart)")
    if lead > MAX_LEAD_HOURS:
        log.warning("the wrfout files cover %d h; lead_hours set to the maximum %d h", lead,
                    MAX_LEAD_HOURS)
        lead = MAX_LEAD_HOURS

    pj = {"kind": root.kind, "truelat1": _f32(grid.truelat1)}
    if root.kind == "lambert":
        pj["truelat2"] = _f32(grid.truelat2)
    pj["stand_lon"] = _f32(grid.stand_lon)
    if root.kind == "lambert":
        pj["ref_lat"] = float(grid.ref_lat)
    dx_min = min(d["dx_m"] for d in domains)
    t0 = datetime.fromisoformat(str(start.astype("datetime64[s]")))
    data = {
        "name": _run_name(root),
        "base_dir": ".",
        "projection": pj,
        "vertical": _vertical(root),
        "domains": domains,
        "time": {"start": t0.strftime("%Y-%m-%dT%H:%M:%SZ"), "lead_hours": lead,
                 "sync_step_s": choose_sync_step(dx_min), "cfl": _CFL,
                 "max_wind_ms": _MAX_WIND_MS, "output_every_hours": 1},
        "species": list(DEFAULT_SPECIES),
        "chemistry": dict(DEFAULT_CHEMISTRY),
        "regions": [],
        "tags": {"enabled": False, "sectors": [], "species": []},
        "inputs": {"met": {"format": "wrfout", "paths": {
            d.name: _met_path(d.path, config_dir) for d in [root, *nests]}},
            "boundary": {"kind": "profile"}},
        "outputs": {"dir": "results"},
    }
    return data


def _run_name(root: _Domain) -> str:
    """The config's ``name``: the file name's stem as a config name (letters, digits, _)."""
    stem = "".join(c if c.isalnum() else "_" for c in Path(root.wo.paths[0]).stem)
    name = stem if stem[:1].isalpha() else f"wrf_{stem}"
    return name[:32].rstrip("_") or "wrf_run"


class _Dumper(yaml.SafeDumper):
    """Block style, except lists of scalars on one line (levels, species)."""


def _represent_list(dumper, data):
    flow = all(not isinstance(v, (list, dict)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)

_HEADER = """\
# aqforecast run configuration written by `aqforecast init --from-wrfout` from
#   {files}
# Domains, projection, levels, time and met paths are those of the WRF run; species and
# chemistry are the sample case's. Still to add (README "Running on your own data"):
#   inputs.emissions (gridded / points / areas; none now: the run has no emissions),
#   regions (GeoJSON polygons) and tags (enabled: true, sectors, species) for source
#   apportionment, inputs.boundary (kind: file) for real lateral boundaries.
"""


def write_config_from_wrfout(wrfout, nests: Sequence = (), window: Sequence[int] | None = None,
                             out: str | os.PathLike = "config.yaml") -> Path:
    """Write the config of :func:`config_from_wrfout` to ``out`` (YAML; temporary name, then
    renamed) after validating it; return the path."""
    out = Path(out)
    data = config_from_wrfout(wrfout, nests, window, out.parent)
    try:
        RunConfig.model_validate(data)
    except ValueError as exc:  # a bug here, or a WRF set-up outside the model's ranges
        raise ConfigError(f"{out}: the configuration made from {wrfout} is not valid:\n{exc}") \
            from None
    if out.exists():
        log.warning("replacing %s", out)
    files = [wrfout, *nests]
    text = _HEADER.format(files="\n#   ".join(str(f) for f in files)) + yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    log.info("wrote %s: %s on %d domain(s), %d h from %s", out, data["projection"]["kind"],
             len(data["domains"]), data["time"]["lead_hours"], data["time"]["start"])
    return out
