"""The cycle's small stages: `aqforecast emissions` (the inventory's totals with the scaling the
cycle uses), `aqforecast verify` (a finished forecast against station observations) and
`aqforecast observations --window-hours`."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from forecast_case import REPO, small_config

from aqforecast.cli import main

sys.path.insert(0, str(REPO / "data_sample"))
import make_sample_obs  # noqa: E402


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cycle")
    cfg = small_config(tmp, hours=6, tags=False)
    run = tmp / "run"
    assert main(["forecast", str(cfg), "--lead-hours", "6", "--out", str(run), "--no-tags",
                 "--no-progress"]) == 0
    return tmp, cfg, run


def test_emission_totals_follow_the_scaling(case, tmp_path):
    _, cfg, _ = case
    scaling = tmp_path / "s.csv"
    scaling.write_text("region,sector,pollutant,factor\n*,industry,NOx,1.5\nHangzhou,*,SO2,0.5\n")
    assert main(["emissions", str(cfg), "--out", str(tmp_path / "a"), "--lead-hours", "24"]) == 0
    assert main(["emissions", str(cfg), "--out", str(tmp_path / "b"), "--lead-hours", "24",
                 "--scaling", str(scaling)]) == 0
    a = pd.read_csv(tmp_path / "a" / "emission_totals.csv")
    b = pd.read_csv(tmp_path / "b" / "emission_totals.csv")
    assert np.allclose(a["base_Mg"], a["scaled_Mg"], rtol=1e-12)
    assert (a["base_Mg"] >= 0).all() and a["base_Mg"].sum() > 0
    key = ["region", "sector", "pollutant"]
    m = a.merge(b, on=key, suffixes=("_a", "_b"))
    assert np.allclose(m["base_Mg_a"], m["base_Mg_b"], rtol=1e-12)
    want = np.ones(len(m))
    want[(m["sector"] == "industry") & (m["pollutant"] == "NOx")] = 1.5
    want[(m["region"] == "Hangzhou") & (m["pollutant"] == "SO2")] *= 0.5
    assert np.allclose(m["scaled_Mg_b"], m["base_Mg_b"] * want, rtol=1e-5)  # %.6g in the CSV
    # 48 h is twice 24 h for a diurnal/weekly profile with whole days? at least larger
    assert main(["emissions", str(cfg), "--out", str(tmp_path / "c"), "--lead-hours", "48"]) == 0
    c = pd.read_csv(tmp_path / "c" / "emission_totals.csv")
    assert c["base_Mg"].sum() > 1.5 * a["base_Mg"].sum()


def test_verify_scores_a_perfect_forecast_as_perfect(case, tmp_path):
    _, cfg, run = case
    table = make_sample_obs.sample_stations(cfg, run, seed=1)
    # observations equal to the forecast at the stations (noise removed): NMB = 0, RMSE ~ 0
    from aqforecast.config import load_config, resolve_path
    from aqforecast.products import surface as surf
    from aqforecast.products import tables

    c = load_config(cfg)
    surfaces = {d.name: surf.read_surface(run / f"conc_{d.name}.nc", d.name) for d in c.domains}
    st = tables.station_table(resolve_path(c, c.inputs.observations.station_coords))
    loc = tables.locate_stations(st, surfaces)
    hourly = tables.hourly_at(loc, surfaces, 0.0).reset_index()
    rows = []
    for sp in ("PM2.5", "O3", "NO2"):
        rows.append(pd.DataFrame({
            "station": hourly["station"], "species": sp, "value": hourly[sp],
            "units": "ug m-3",
            "time": pd.to_datetime(hourly["time"]).dt.strftime("%Y-%m-%dT%H:00:00+00:00"),
            "lon": hourly["station"].map(st.set_index("station")["lon"]),
            "lat": hourly["station"].map(st.set_index("station")["lat"])}))
    obs = tmp_path / "perfect.csv"
    pd.concat(rows).to_csv(obs, index=False)
    assert main(["verify", str(cfg), "--run", str(run), "--obs", str(obs), "--out",
                 str(tmp_path / "v")]) == 0
    skill = pd.read_csv(tmp_path / "v" / "skill.csv")
    assert set(skill["pollutant"]) == {"PM2.5", "O3", "NO2"}
    assert skill["station"].nunique() == len(loc.names)
    assert np.allclose(skill["nmb"], 0.0, atol=1e-9) and np.allclose(skill["rmse"], 0.0,
                                                                      atol=1e-6)
    summary = pd.read_csv(tmp_path / "v" / "summary.csv")
    assert "all" in set(summary["city"]) and (summary["cat_exact"] == 1.0).all()
    paired = pd.read_csv(tmp_path / "v" / "paired.csv")
    assert len(paired) == int(skill["n"].sum())
    # the noisy synthetic observations: unbiased on average, RMSE of the order of the noise
    noisy = tmp_path / "noisy.csv"
    table.to_csv(noisy, index=False)
    assert main(["verify", str(cfg), "--run", str(run), "--obs", str(noisy), "--out",
                 str(tmp_path / "n")]) == 0
    s2 = pd.read_csv(tmp_path / "n" / "summary.csv")
    pm = s2[(s2["pollutant"] == "PM2.5") & (s2["city"] == "all")]
    assert (pm["nmb"].abs() < 15.0).all() and (pm["rmse"] > 0).all()  # NMB in %


def test_verify_without_overlap_writes_empty_tables(case, tmp_path):
    _, cfg, run = case
    obs = tmp_path / "later.csv"
    obs.write_text("station,time,species,value,units,lon,lat\n"
                   "X1,2030-01-01T00:00:00+00:00,PM2.5,30,ug m-3,120.2,30.2\n")
    assert main(["verify", str(cfg), "--run", str(run), "--obs", str(obs), "--out",
                 str(tmp_path / "v")]) == 0
    assert len(pd.read_csv(tmp_path / "v" / "skill.csv")) == 0
    assert (tmp_path / "v" / "_SUCCESS").is_file()


def test_verify_refuses_an_unfinished_run_and_a_missing_file(case, tmp_path, capsys):
    _, cfg, run = case
    assert main(["verify", str(cfg), "--run", str(tmp_path), "--obs", str(tmp_path / "x.csv"),
                 "--out", str(tmp_path / "v")]) == 2
    assert main(["verify", str(cfg), "--run", str(run), "--obs", str(tmp_path / "x.csv"),
                 "--out", str(tmp_path / "v")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_observation_window_option(case, tmp_path, capsys):
    tmp, cfg, run = case
    table = make_sample_obs.sample_stations(cfg, run, seed=2)
    make_sample_obs.write_daily(table, tmp_path / "obs")
    import yaml

    data = yaml.safe_load(cfg.read_text())
    data["inputs"]["observations"]["sources"] = [
        {"path": str(tmp_path / "obs" / "stations_*.csv"), "format": "generic"}]
    c2 = tmp_path / "c.yaml"
    c2.write_text(yaml.safe_dump(data, sort_keys=False))
    import xarray as xr

    for hours, want in ((2, 2), (5, 5)):
        out = tmp_path / f"o{hours}"
        assert main(["observations", str(c2), "--cycle", "2026-07-20T06", "--out", str(out),
                     "--window-hours", str(hours)]) == 0
        with xr.open_dataset(out / "obs.nc") as ds:
            assert ds.sizes["time"] == want
    assert main(["observations", str(c2), "--cycle", "2026-07-20T06", "--out",
                 str(tmp_path / "bad"), "--window-hours", "0"]) == 2
    assert "--window-hours" in capsys.readouterr().err


def test_the_last_output_time_is_always_a_restart_and_the_default_analysis_time(tmp_path):
    cfg = small_config(tmp_path, hours=5, tags=False, restart_every=4)
    run = tmp_path / "run"
    assert main(["forecast", str(cfg), "--lead-hours", "5", "--out", str(run), "--no-tags",
                 "--no-progress"]) == 0
    stamps = sorted(p.name for p in (run / "restart").iterdir() if p.is_dir())
    assert stamps[-1] == "2026-07-20T05", stamps     # the end, though 5 is no multiple of 4
    table = make_sample_obs.sample_stations(cfg, run, seed=3)
    obs = tmp_path / "obs.csv"
    table.to_csv(obs, index=False)
    assert main(["assimilate", str(cfg), "--background", str(run), "--obs", str(obs),
                 "--out", str(tmp_path / "an")]) == 0
    import xarray as xr

    with xr.open_dataset(tmp_path / "an" / "initial_d01.nc") as ds:
        assert str(ds["time"].values)[:13] == "2026-07-20T05"
