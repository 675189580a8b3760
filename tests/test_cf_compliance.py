"""Every NetCDF file of a short daily cycle passes the IOOS compliance checker ``cf:1.10`` with no
high- or medium-priority failure (issue 18): grid files, the forecast's conc/tags files and its
restart states, the products (hourly, lead-window, daily), obs.nc, the analysis (initial state and
increments), the inversion's scaling.nc and the NetCDF form of a scaling table.

The checker runs offline: it reads the CF standard-name table packaged with it (files that name
no ``standard_name_vocabulary`` never trigger a download; the download function is replaced by
one that fails, so a try would show up as the packaged table being used anyway).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from forecast_case import small_config

from aqforecast.cli import main
from aqforecast.config import load_config, read_yaml
from aqforecast.grid import grids_from_config

cc_runner = pytest.importorskip(
    "compliance_checker.runner",
    reason="compliance-checker is not installed (pip install -e '.[test]')")

pytestmark = pytest.mark.filterwarnings("ignore")

HOURS = 3


@pytest.fixture(scope="module")
def checker():
    from compliance_checker.base import BaseCheck
    from compliance_checker.cf import util as cf_util

    def no_download(*args, **kwargs):
        raise RuntimeError("no network in the tests: use the packaged standard-name table")

    saved = cf_util.download_cf_standard_name_table
    cf_util.download_cf_standard_name_table = no_download
    suite = cc_runner.CheckSuite()
    suite.load_all_available_checkers()
    if "cf:1.10" not in suite.checkers:
        pytest.skip(f"this compliance-checker has no cf:1.10 ({sorted(suite.checkers)})")

    def failures(path: Path) -> list[str]:
        """Messages of the failed high/medium checks of one file."""
        ds = suite.load_dataset(str(path))
        try:
            groups = suite.run_all(ds, ["cf:1.10"], skip_checks=[])
        finally:
            ds.close()
        results, errors = groups["cf:1.10"]
        out = [f"checker error in {name}: {err}" for name, err in (errors or {}).items()]
        for r in results:
            if r.weight not in (BaseCheck.HIGH, BaseCheck.MEDIUM):
                continue
            v = r.value
            ok = bool(v) if isinstance(v, bool) else v[0] == v[1]
            if not ok:
                out.append(f"[{'high' if r.weight == BaseCheck.HIGH else 'medium'}] {r.name}: "
                           + "; ".join(map(str, r.msgs)))
        return out

    yield failures
    cf_util.download_cf_standard_name_table = saved


def _generic_obs(case: Path, path: Path) -> None:
    """Station observations (generic CSV) on a lattice inside d01 for the cycle's hours."""
    grid = grids_from_config(load_config(case))["d01"]
    lon2d, lat2d = grid.lonlat
    js, is_ = np.meshgrid(np.arange(2, grid.ny - 2, 5), np.arange(2, grid.nx - 2, 5))
    lon, lat = lon2d[js.ravel(), is_.ravel()] + 0.003, lat2d[js.ravel(), is_.ravel()] - 0.002
    rng = np.random.default_rng(18)
    rows = []
    for h in range(HOURS):
        t = f"2026-07-20T{h:02d}:00:00Z"
        for k in range(lon.size):
            for sp, base in (("NO2", 25.0), ("SO2", 8.0), ("PM2.5", 35.0), ("O3", 80.0)):
                rows.append({"station": f"S{k}", "time": t, "species": sp,
                             "value": round(base * rng.uniform(0.7, 1.3), 2),
                             "units": "ug m-3", "lon": round(lon[k], 5),
                             "lat": round(lat[k], 5)})
    pd.DataFrame(rows).to_csv(path, index=False)


@pytest.fixture(scope="module")
def cycle(tmp_path_factory):
    """One short cycle through every stage that writes NetCDF: {kind: [paths]}."""
    tmp = tmp_path_factory.mktemp("cf")
    case = small_config(tmp, hours=HOURS, tags=True)
    _generic_obs(case, tmp / "stations.csv")
    data = read_yaml(case)
    data["time"]["start"] = str(data["time"]["start"])
    data["inputs"]["observations"]["sources"] = [{"path": str(tmp / "stations.csv"),
                                                  "format": "generic"}]
    case.write_text(yaml.safe_dump(data, sort_keys=False))
    run, prod = tmp / "run", tmp / "products"

    def ok(*argv):
        assert main([str(a) for a in argv]) == 0, argv

    ok("grid", case, "--out", tmp / "grid")
    ok("forecast", case, "--lead-hours", HOURS, "--out", run, "--no-progress")
    ok("products", case, "--run", run, "--out", prod, "--no-maps")
    ok("observations", case, "--cycle", f"2026-07-20T{HOURS:02d}", "--out", tmp / "obs")
    ok("assimilate", case, "--background", run, "--obs", tmp / "obs" / "obs.nc", "--out",
       tmp / "analysis")
    ok("invert", case, "--run", run, "--obs", tmp / "obs" / "obs.nc", "--out", tmp / "inv")
    from aqforecast.emissions.scaling import read_scaling_table, write_scaling_table

    write_scaling_table(read_scaling_table(tmp / "inv" / "scaling.csv"), tmp / "table.nc")
    kinds = {"grid": sorted((tmp / "grid").glob("grid_*.nc")),
             "conc": sorted(run.glob("conc_*.nc")), "tags": sorted(run.glob("tags_*.nc")),
             "restart": sorted((run / "restart").rglob("*.nc")),
             "surface_hourly": sorted(prod.glob("surface_hourly_*.nc")),
             "leadwindow": sorted(prod.glob("leadwindow_*.nc")),
             "daily": sorted(prod.glob("daily_*.nc")),
             "obs": [tmp / "obs" / "obs.nc"],
             "analysis": sorted((tmp / "analysis").glob("*.nc")),
             "scaling": [tmp / "inv" / "scaling.nc", tmp / "table.nc"]}
    return kinds


KINDS = ["grid", "conc", "tags", "restart", "surface_hourly", "leadwindow", "daily", "obs",
         "analysis", "scaling"]


@pytest.mark.parametrize("kind", KINDS)
def test_files_pass_cf_1_10(cycle, checker, kind):
    paths = cycle[kind]
    assert paths and all(p.exists() for p in paths), f"{kind}: no file written ({paths})"
    report = {p.name: checker(p) for p in paths}
    bad = {k: v for k, v in report.items() if v}
    assert not bad, f"{kind}: compliance-checker cf:1.10 high/medium failures:\n" + "\n".join(
        f"{name}:\n  " + "\n  ".join(msgs) for name, msgs in bad.items())


def test_grid_file_bounds_cell_measures_and_sigma(cycle):
    """The CF pieces issue 18 asked for: lon/lat bounds from the cell corners, cell_measures
    with the cell area, and lev as atmosphere_sigma_coordinate whose formula terms give the
    model's pressure (p = ptop + lev (ps - ptop), the VerticalGrid definition)."""
    import xarray as xr

    g = xr.open_dataset(cycle["grid"][0])
    assert g["lon"].attrs["bounds"] == "lon_bnds" and g["lon_bnds"].dims == ("y", "x", "nv4")
    np.testing.assert_allclose(g["lon_bnds"].values[0, 0, 2], g["lon_corner"].values[1, 1])
    np.testing.assert_allclose(g["lat_bnds"].values[-1, -1, 0], g["lat_corner"].values[-2, -2])
    assert g["map_factor"].attrs["cell_measures"] == "area: cell_area"
    assert g["lev"].attrs["standard_name"] == "atmosphere_sigma_coordinate"
    assert g["lev"].attrs["formula_terms"] == "sigma: lev ps: ps ptop: ptop"
    conc = xr.open_dataset(next(p for p in cycle["conc"] if p.name == "conc_d01.nc"))
    assert conc["ps"].dims == ("time", "y", "x")
    assert conc["O3"].attrs["cell_measures"] == "area: cell_area"
    # the formula terms reproduce the VerticalGrid pressures of the run's levels
    cfg_top = float(conc["ptop"])
    ps = conc["ps"].isel(time=0).values
    p_lev0 = cfg_top + float(conc["lev"][0]) * (ps - cfg_top)
    assert 85000 < p_lev0.min() and p_lev0.max() < 105000
    assert conc["lev_interface"].values[0] == 1.0 and conc["lev_interface"].values[-1] == 0.0
