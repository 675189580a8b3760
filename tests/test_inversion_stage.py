"""The emission inversion stage on the small case: the tag Jacobian equals finite differences
for a primary species under donor-cell, and `aqforecast invert` moves perturbed factors toward
the truth of a twin experiment, writing the forecast's --scaling table with sigma_ln."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from forecast_case import exact_small_config

from aqforecast.cli import main
from aqforecast.config import load_config
from aqforecast.emissions.scaling import read_scaling_table
from aqforecast.grid import grids_from_config
from aqforecast.inversion.jacobian import build_observation_system

HOURS = 6
TRUTH = ("region,sector,pollutant,factor\nHangzhou,industry,NOx,1.6\n"
         "outside,power,SO2,0.6\n*,residential,PM25,1.4\n")


def _stations(grid, step=3):
    lon2d, lat2d = grid.lonlat
    js, is_ = np.meshgrid(np.arange(1, grid.ny - 1, step), np.arange(1, grid.nx - 1, step))
    return lon2d[js.ravel(), is_.ravel()] + 0.002, lat2d[js.ravel(), is_.ravel()] - 0.002


def _obs_from_run(case, run, path):
    """Noise-free observations of NO2, SO2, PM25 at a station lattice from a run's surface
    (the inversion's own operator: build_observation_system's y_prior of that run)."""
    cfg = load_config(case)
    grids = grids_from_config(cfg)
    lon, lat = _stations(grids["d01"])
    times = pd.date_range("2026-07-20T00:00", periods=HOURS, freq="h")
    frame = pd.DataFrame({"station": np.tile([f"S{k}" for k in range(lon.size)], len(times)),
                          "lon": np.tile(lon, len(times)), "lat": np.tile(lat, len(times)),
                          "time": np.repeat(times, lon.size)})
    for q in ("NO2", "SO2", "PM25"):
        frame[q] = 1.0
    system = build_observation_system(run, frame, grids, ["NO2", "SO2", "PM25"],
                                      [r.name for r in cfg.regions], list(cfg.tags.sectors))
    sp = {"PM25": "PM2.5"}
    rows = pd.DataFrame({"station": system.meta["station"],
                         "time": pd.to_datetime(system.meta["time"]).dt.strftime(
                             "%Y-%m-%dT%H:%M:%SZ"),
                         "species": system.meta["quantity"].map(lambda q: sp.get(q, q)),
                         "value": system.y_prior, "units": "ug m-3",
                         "lon": system.meta["lon"], "lat": system.meta["lat"]})
    rows.to_csv(path, index=False)
    return system


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inv")
    case = exact_small_config(tmp, hours=HOURS)
    runs = {}
    for name, extra in (("prior", []), ("truth", ["--scaling", str(tmp / "truth.csv")])):
        (tmp / "truth.csv").write_text(TRUTH)
        runs[name] = tmp / name
        assert main(["forecast", str(case), "--lead-hours", str(HOURS), "--out",
                     str(runs[name]), "--no-progress", *extra]) == 0
    return case, runs, tmp


@pytest.mark.slow
def test_tag_jacobian_equals_finite_differences_for_primary_pm(twin, tmp_path):
    case, runs, tmp = twin
    cfg = load_config(case)
    grids = grids_from_config(cfg)
    pert = tmp_path / "pert"
    (tmp_path / "s.csv").write_text("region,sector,pollutant,factor\n"
                                    "Hangzhou,residential,PM25,1.1\n")
    assert main(["forecast", str(case), "--lead-hours", str(HOURS), "--out", str(pert),
                 "--no-progress", "--scaling", str(tmp_path / "s.csv")]) == 0
    sys0 = _obs_from_run(case, runs["prior"], tmp_path / "o0.csv")
    sys1 = _obs_from_run(case, pert, tmp_path / "o1.csv")
    j = sys0.state.index(("Hangzhou", "residential", "PM25"))
    pm = (sys0.meta["quantity"] == "PM25").to_numpy()
    fd = (sys1.y_prior - sys0.y_prior)[pm] / 0.1  # linear in f: d c / d f = tag = d c / d ln f
    np.testing.assert_allclose(fd, sys0.H[pm, j], rtol=1e-6,
                               atol=1e-9 * float(np.abs(sys0.H[pm, j]).max()))
    assert np.abs(sys0.H[pm, j]).max() > 0


def test_invert_recovers_the_twin_truth(twin, tmp_path):
    case, runs, tmp = twin
    obs = tmp / "obs.csv"
    if not obs.exists():
        _obs_from_run(case, runs["truth"], obs)
    out = tmp_path / "inv"
    assert main(["invert", str(case), "--run", str(runs["prior"]), "--obs", str(obs), "--out",
                 str(out)]) == 0
    table = read_scaling_table(out / "scaling.csv")
    assert "sigma_ln" in table.extra_columns
    post = {(r.region, r.sector, r.pollutant): (r.factor, r.extra["sigma_ln"])
            for r in table.rows}
    f, s = post[("Hangzhou", "industry", "NOx")]
    assert f > 1.15 and abs(np.log(f) - np.log(1.6)) < 2 * s + 0.05  # moved toward 1.6
    f, s = post[("Hangzhou", "residential", "PM25")]
    assert f > 1.0 and abs(np.log(f) - np.log(1.4)) < 2 * s  # toward 1.4, truth within 2 sigma
    f, s = post[("Hangzhou", "power", "SO2")]  # unperturbed there: stays, and is constrained
    assert abs(np.log(f)) < 0.05 and s < 0.5
    report = pd.read_csv(out / "inversion_report.csv").set_index("item")["value"]
    assert 0 < float(report["dofs"]) <= len(post)
    assert float(report["filterpy_vs_batch_max_difference"]) < 1e-8
    assert (out / "hotspots_emission.csv").exists() and (out / "_SUCCESS").exists()
    # the posterior table is the next forecast's --scaling as it is
    nxt = tmp_path / "next"
    assert main(["forecast", str(case), "--lead-hours", "1", "--out", str(nxt),
                 "--no-progress", "--no-tags", "--scaling", str(out / "scaling.csv")]) == 0
    # cycling: yesterday's posterior as the prior (relaxed, error growth)
    out2 = tmp_path / "inv2"
    assert main(["invert", str(case), "--run", str(runs["prior"]), "--obs", str(obs), "--out",
                 str(out2), "--prior-scaling", str(out / "scaling.csv")]) == 0
    hist = pd.read_csv(out2 / "inversion_history.csv")
    assert len(hist) == 2


def test_invert_takes_the_run_s_sectors_when_the_config_lists_none(twin, tmp_path):
    """A config whose ``tags.sectors`` is empty (the model then tags every inventory sector)
    inverts the sectors of the prior run's tag files: the same posterior as the config that
    lists them; with no tag file either, a clear error before any work."""
    import shutil

    import yaml

    from aqforecast.config import read_yaml
    from aqforecast.io import InputFileError
    from aqforecast.inversion.invert import invert, run_tag_sectors

    case, runs, tmp = twin
    obs = tmp / "obs.csv"
    if not obs.exists():
        _obs_from_run(case, runs["truth"], obs)
    cfg = load_config(case)
    assert set(run_tag_sectors(runs["prior"], grids_from_config(cfg))) == set(cfg.tags.sectors)
    raw = read_yaml(case)
    raw["tags"]["sectors"] = []
    bare = case.with_name("no_sectors.yaml")
    bare.write_text(yaml.safe_dump(raw, sort_keys=False))
    posteriors = []
    for config, out in ((case, tmp_path / "listed"), (bare, tmp_path / "from_run")):
        assert main(["invert", str(config), "--run", str(runs["prior"]), "--obs", str(obs),
                     "--out", str(out)]) == 0
        posteriors.append({(r.region, r.sector, r.pollutant): (r.factor, r.extra["sigma_ln"])
                           for r in read_scaling_table(out / "scaling.csv").rows})
    assert posteriors[0].keys() == posteriors[1].keys() and len(posteriors[0]) > 3
    for k, (f, s) in posteriors[0].items():
        np.testing.assert_allclose(posteriors[1][k], (f, s), rtol=1e-8)
    untagged = tmp_path / "untagged"
    untagged.mkdir()
    for f in runs["prior"].iterdir():
        if f.is_file() and not f.name.startswith("tags_"):
            shutil.copy(f, untagged / f.name)
    with pytest.raises(InputFileError, match="tags.sectors is empty"):
        invert(load_config(bare), untagged, obs, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_run_tag_sectors_leaves_out_the_special_tags(tmp_path):
    """The sectors of a tag file in their order, without the initial / boundary tags or the
    one background tag (``tags.initial_and_boundary_tags: false``)."""
    import xarray as xr

    from aqforecast.inversion.invert import run_tag_sectors

    labels = [("Hangzhou", "power"), ("outside", "power"), ("Hangzhou", "industry"),
              ("initial", "ic"), ("boundary", "bc"), ("background", "icbc")]
    xr.Dataset(coords={"tag_region": ("tag", [r for r, _ in labels]),
                       "tag_sector": ("tag", [s for _, s in labels])}).to_netcdf(
        tmp_path / "tags_d02.nc")
    assert run_tag_sectors(tmp_path, {"d01": None, "d02": None}) == ["power", "industry"]
    assert run_tag_sectors(tmp_path, {"d01": None}) == []


def test_invert_co_emitted_pollutants_follow_their_sector(twin, tmp_path):
    """inversion.pollutant_correlation + co_emitted: NMVOC and CO (no observed quantity feeds
    them) and NH3 (where its tags give it no sensitivity) get a posterior for every region x
    sector with an observed factor, moved the way the observed pollutants of that source
    moved, with a smaller sigma than the prior's; the
    observed factors still recover the twin's truth; co_emitted without a correlation is
    refused by the config."""
    import yaml

    from aqforecast.config import ConfigError, read_yaml

    case, runs, tmp = twin
    obs = tmp / "obs.csv"
    if not obs.exists():
        _obs_from_run(case, runs["truth"], obs)
    raw = read_yaml(case)
    raw["inversion"] = {**(raw.get("inversion") or {}), "pollutant_correlation": 0.5,
                        "co_emitted": ["NMVOC", "CO", "NH3"]}
    joint = case.with_name("joint.yaml")
    joint.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = tmp_path / "joint"
    assert main(["invert", str(joint), "--run", str(runs["prior"]), "--obs", str(obs),
                 "--out", str(out)]) == 0
    post = {(r.region, r.sector, r.pollutant): (r.factor, r.extra["sigma_ln"])
            for r in read_scaling_table(out / "scaling.csv").rows}
    observed = {(r, s) for r, s, p in post if p in ("NOx", "SO2", "PM25")}
    for r, s in observed:
        for p in ("NMVOC", "CO", "NH3"):  # NH3: observed through NH4, or co-emitted
            assert (r, s, p) in post, (r, s, p)
    f_nox, _ = post[("Hangzhou", "industry", "NOx")]
    f_voc, s_voc = post[("Hangzhou", "industry", "NMVOC")]
    assert f_nox > 1.15 and f_voc > 1.02 and s_voc < 0.6   # followed NOx up, constrained
    f, s = post[("Hangzhou", "residential", "PM25")]
    assert f > 1.0 and abs(np.log(f) - np.log(1.4)) < 2 * s
    report = pd.read_csv(out / "inversion_report.csv").set_index("item")["value"]
    assert any("co-emitted" in str(v) for v in report.loc[["note"]].values.ravel())
    # cycling: with growth_correlated the next prior keeps the pollutants' correlation, so the
    # co-emitted factors follow the observed ones more than under the uncorrelated growth
    nxt = {}
    for flag in (False, True):
        raw["inversion"]["growth_correlated"] = flag
        joint.write_text(yaml.safe_dump(raw, sort_keys=False))
        o = tmp_path / f"cycled_{flag}"
        assert main(["invert", str(joint), "--run", str(runs["prior"]), "--obs", str(obs),
                     "--out", str(o), "--prior-scaling", str(out / "scaling.csv")]) == 0
        nxt[flag] = {(r.region, r.sector, r.pollutant): r.extra["sigma_ln"]
                     for r in read_scaling_table(o / "scaling.csv").rows}
    key = ("Hangzhou", "industry", "NMVOC")
    assert nxt[True][key] < nxt[False][key]     # more of its prior variance explained
    raw["inversion"].pop("growth_correlated")
    raw["inversion"]["pollutant_correlation"] = 0.0
    joint.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigError, match="co_emitted"):
        load_config(joint)


@pytest.mark.slow
def test_invert_with_a_finite_difference_jacobian_reports_the_tag_difference(twin, tmp_path):
    """--jacobian fd: one perturbed run per factor (39 runs of 6 h, ~3 min). Measured on this
    case: tags vs FD relative difference NO2 0.026, SO2 0.050, PM2.5 0.049 -- 0.33 while the
    NH4 tags counted as the NH3 sources' sensitivity in this ammonia-rich case (the model's
    equilibrium makes ammonium follow the sulfate there; jacobian.NH4_AMMONIA_RICH_SENSITIVITY)."""
    case, runs, tmp = twin
    obs = tmp / "obs.csv"
    if not obs.exists():
        _obs_from_run(case, runs["truth"], obs)
    out = tmp_path / "fd"
    assert main(["invert", str(case), "--run", str(runs["prior"]), "--obs", str(obs), "--out",
                 str(out), "--jacobian", "fd"]) == 0
    report = pd.read_csv(out / "inversion_report.csv").set_index("item")["value"]
    assert report["jacobian"] == "fd"
    diff = {k: float(v.split()[-1]) for k, v in report.items()
            if str(k).startswith("jacobian tags vs fd")}
    assert set(diff) >= {"jacobian tags vs fd, PM25", "jacobian tags vs fd, NO2"}
    assert diff["jacobian tags vs fd, NO2"] < 0.1 and diff["jacobian tags vs fd, SO2"] < 0.15, diff
    assert diff["jacobian tags vs fd, PM25"] < 0.1, diff  # ammonium follows its acids
    table = read_scaling_table(out / "scaling.csv")
    f = {(r.region, r.sector, r.pollutant): r.factor for r in table.rows}
    assert f[("Hangzhou", "industry", "NOx")] > 1.1


def test_cycled_prior_takes_the_full_posterior_covariance(tmp_path):
    """The cycled prior reads yesterday's posterior covariance from the scaling.nc next to the
    scaling.csv (the correlations the observations made carry over); a stale .nc (sigma_ln
    differing from the table's) is ignored; factors the .nc lacks get no cross-covariance."""
    import xarray as xr

    from aqforecast.config.models import InversionConfig
    from aqforecast.inversion.invert import _posterior_covariance, growth_sigma

    keys = [("Hangzhou", "industry", "NOx"), ("Hangzhou", "transport", "NOx"),
            ("Shaoxing", "industry", "NOx")]
    cov = np.array([[0.04, -0.03, 0.0], [-0.03, 0.05, 0.0], [0.0, 0.0, 0.09]])
    sig = np.sqrt(np.diag(cov))
    (tmp_path / "scaling.csv").write_text("region,sector,pollutant,factor,sigma_ln\n" + "".join(
        f"{r},{s},{p},1.2,{v!r}\n" for (r, s, p), v in zip(keys[:2], sig[:2])))
    xr.Dataset({"covariance_ln": (("factor_index", "factor_index2"), cov[:2, :2])},
               coords={"region": ("factor_index", [k[0] for k in keys[:2]]),
                       "sector": ("factor_index", [k[1] for k in keys[:2]]),
                       "pollutant": ("factor_index", [k[2] for k in keys[:2]])}
               ).to_netcdf(tmp_path / "scaling.nc")
    have, sub = _posterior_covariance(tmp_path / "scaling.csv", keys,
                                      np.array([sig[0], sig[1], 0.4]))
    np.testing.assert_array_equal(have, [True, True, False])
    np.testing.assert_allclose(sub, cov[:2, :2])
    assert _posterior_covariance(tmp_path / "scaling.csv", keys,
                                 np.array([sig[0] * 1.1, sig[1], 0.4])) is None   # stale
    (tmp_path / "scaling.nc").unlink()
    assert _posterior_covariance(tmp_path / "scaling.csv", keys, sig) is None
    # error growth: configured, or the base sigma_ln's stationary spread
    s = np.array([0.4, 0.5])
    np.testing.assert_allclose(growth_sigma(InversionConfig(q_sigma_ln=0.1), s), [0.1, 0.1])
    inv = InversionConfig(q_sigma_ln=None, relaxation=0.8)
    q = growth_sigma(inv, s)
    np.testing.assert_allclose(q ** 2 / (1 - 0.8 ** 2), s ** 2)


def test_factors_without_sensitivity_today_keep_their_cycled_prior(tmp_path):
    from types import SimpleNamespace

    from aqforecast.config.models import InversionConfig
    from aqforecast.inversion.invert import _carried

    (tmp_path / "scaling.csv").write_text(
        "region,sector,pollutant,factor,sigma_ln\n"
        "Hangzhou,industry,NOx,1.5,0.1\nHangzhou,agriculture,NH3,2.0,0.2\n")
    cfg = SimpleNamespace(inversion=InversionConfig(relaxation=0.7, q_sigma_ln=0.1))
    rows = _carried(cfg, [("Hangzhou", "industry", "NOx")], tmp_path / "scaling.csv")
    assert len(rows) == 1 and rows[0]["pollutant"] == "NH3"
    assert rows[0]["factor"] == pytest.approx(2.0 ** 0.7)
    assert rows[0]["sigma_ln"] == pytest.approx(np.sqrt(0.49 * 0.04 + 0.01))
    assert _carried(cfg, [], None) == []


def test_ammonium_follows_its_acids_where_ammonia_is_in_excess():
    """The model's equilibrium: total ammonia > 2 x sulfate (moles) -> ammonia-rich (NH4 = 2 SO4
    + NO3, not limited by NH3); else all ammonia is ammonium."""
    import xarray as xr

    from aqforecast.inversion.jacobian import NH4_AMMONIA_RICH_SENSITIVITY, _ammonia_rich
    from aqforecast.species import air_number_density

    umol_per_ppb = air_number_density(298.15, 101325.0) * 1e-3
    so4 = np.array([[96.062, 96.062]])          # 1 umol m-3 of sulfate in both cells
    nh4 = np.array([[18.039, 2 * 18.039]])      # 1 and 2 umol m-3 of ammonium
    nh3 = np.array([[0.5, 1.0]]) / umol_per_ppb  # 0.5 and 1 umol m-3 of ammonia
    conc = xr.Dataset({n: (("time", "lev", "y", "x"), v[None, None], {"units": u})
                       for n, v, u in (("SO4", so4, "ug m-3"), ("NH4", nh4, "ug m-3"),
                                       ("NH3", nh3, "ppb"))})
    np.testing.assert_array_equal(_ammonia_rich(conc, 0), [[0.0, 1.0]])   # 1.5 < 2, 3 > 2
    assert _ammonia_rich(conc.drop_vars("NH3"), 0) is None
    ratio, pol = NH4_AMMONIA_RICH_SENSITIVITY["SO4"]
    assert pol == "SO2" and ratio == pytest.approx(2 * 18.039 / 96.062)
