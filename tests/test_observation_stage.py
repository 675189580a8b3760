"""The observation stage (issue 19, first part): the generic CSV, windowing to UTC, merging
sources, QC flags as CF flag variables in obs.nc, and the `aqforecast observations` command."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from aqforecast.cli import main
from aqforecast.config import read_yaml
from aqforecast.observations import qc
from aqforecast.observations.generic import read_generic_csv
from aqforecast.observations.readers import ObservationFormatError, read_prsa

PRSA = "obs_beijing_prsa/PRSA_12sites_2016-12-01_2017-02-28_hourly.csv"
PRSA_COORDS = "obs_beijing_prsa/stations_beijing_prsa_cnemc.csv"
GENERIC = """station,time,species,value,units,lon,lat
S1,2026-07-20T08:00:00+08:00,NO2,10,ppb,120.1,30.2
S1,2026-07-20T00:00:00Z,CO,1,ppm,120.1,30.2
S1,2026-07-20T01:00:00+00:00,PM2.5,35,ug m-3,120.1,30.2
S2,2026-07-20T09:00:00+08:00,O3,0.1,mg/m3,,
S2,2026-07-20T09:00:00+08:00,PM10,,ug m-3,,
"""


def test_generic_csv_units_and_times(tmp_path):
    p = tmp_path / "g.csv"
    p.write_text(GENERIC)
    df = read_generic_csv(p)
    s1 = df[df.station == "S1"].set_index("time")
    t0 = pd.Timestamp("2026-07-20T00:00")
    # 10 ppb NO2 at 298.15 K, 1013.25 hPa: 10 * 46.006 * p / (R T) * 1e-3 = 18.81 ug m-3
    assert s1.loc[t0, "NO2"] == pytest.approx(10 * 46.006 * 101325 / (8.314462618 * 298.15)
                                              * 1e-3, rel=1e-6)
    assert s1.loc[t0, "NO2"] == pytest.approx(18.81, abs=0.01)
    assert s1.loc[t0, "CO"] == pytest.approx(1.145, abs=1e-3)  # 1 ppm CO in mg m-3
    assert s1.loc[t0 + pd.Timedelta(hours=1), "PM2.5"] == 35.0
    s2 = df[df.station == "S2"].set_index("time")
    assert s2.loc[pd.Timestamp("2026-07-20T01:00"), "O3"] == pytest.approx(100.0)
    assert np.isnan(s2.loc[pd.Timestamp("2026-07-20T01:00"), "PM10"])
    assert df.attrs["units"]["CO"] == "mg m-3" and df.attrs["time_zone"] == "UTC"
    assert df.set_index("station")["lon"].loc["S1"].iloc[0] == 120.1


@pytest.mark.parametrize("line, column, expect", [
    ("S1,2026-07-20T08:00:00,NO2,10,ppb,,", "time", "UTC offset"),
    ("S1,2026-07-20T08:00:00Z,NOx,10,ppb,,", "species", "one of"),
    ("S1,2026-07-20T08:00:00Z,PM10,10,ppb,,", "units", "ug m-3 or mg m-3"),
    ("S1,2026-07-20T08:00:00Z,NO2,inf,ppb,,", "value", "finite number"),
    ("S1,2026-07-20T08:00:00Z,NO2,1,ppb,200,30", "lon", "[-180, 180]"),
    ("S1,2026-07-20T25:00:00Z,NO2,1,ppb,,", "time", "ISO 8601"),
])
def test_generic_csv_errors_name_line_and_column(tmp_path, line, column, expect):
    p = tmp_path / "bad.csv"
    p.write_text("station,time,species,value,units,lon,lat\n"
                 "S0,2026-07-20T00:00:00Z,O3,40,ug m-3,,\n" + line + "\n")
    with pytest.raises(ObservationFormatError) as info:
        read_generic_csv(p)
    e = info.value
    assert e.line == 3 and e.column == column and expect in str(e), str(e)


def test_generic_csv_duplicates_and_header(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text("station,time,species,value,units\nS,2026-07-20T00:00Z,O3,1,ug m-3\n"
                 "S,2026-07-20T08:00+08:00,O3,2,ug m-3\n")
    with pytest.raises(ObservationFormatError, match="one value per station, time and species"):
        read_generic_csv(p)
    p.write_text("station,when,species,value,units\n")
    with pytest.raises(ObservationFormatError, match="missing time"):
        read_generic_csv(p)


def _config(tmp_path, sources, shared_data=None, window=6):
    data = read_yaml(__import__("pathlib").Path(__file__).resolve().parents[1] / "config" /
                     "config.yaml")
    data["base_dir"] = str(tmp_path)
    data["time"]["start"] = str(data["time"]["start"])
    data["inputs"]["observations"] = {"sources": sources, "window_hours": window}
    if shared_data is not None:
        data["inputs"]["observations"]["station_coords"] = str(shared_data / PRSA_COORDS)
    path = tmp_path / "obs.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    # the sample config's relative input paths are not needed by this stage
    return path


def test_observation_stage_on_real_prsa(shared_data, tmp_path, capsys):
    cfg = _config(tmp_path, [{"path": str(shared_data / PRSA), "format": "prsa"}], shared_data)
    out = tmp_path / "obs"
    assert main(["observations", str(cfg), "--cycle", "2017-01-15T00", "--out",
                 str(out)]) == 0
    ds = xr.open_dataset(out / "obs.nc")
    assert dict(ds.sizes) == {"station": 12, "time": 6}
    # the window: hourly means that began 18..23 UTC on 14 January = 02..07 Beijing time
    assert str(ds.time.values[0])[:13] == "2017-01-14T18" and str(ds.time.values[-1])[:13] == \
        "2017-01-14T23"
    ref = read_prsa(shared_data / PRSA).set_index(["station", "time"])
    local = pd.Timestamp("2017-01-15T02:00")
    got = float(ds["PM25"].sel(station="Dongsi").isel(time=0))
    want = ref.loc[("Dongsi", local), "PM2.5"]
    assert got == want or (np.isnan(got) and np.isnan(want))
    assert ds["CO"].attrs["units"] == "mg m-3" and ds["PM25"].attrs["standard_name"] == \
        "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air"
    assert float(ds["lon"].sel(station="Dongsi")) == pytest.approx(116.4174)
    # CF flag variables beside every species
    qcv = ds["PM25_qc"]
    assert ds["PM25"].attrs["ancillary_variables"] == "PM25_qc"
    assert list(qcv.attrs["flag_masks"]) == [1, 2, 4, 8, 16, 32]
    assert qcv.attrs["flag_meanings"].split()[:2] == ["missing", "range"]
    miss = np.isnan(ds["PM25"].values)
    assert np.all((qcv.values[miss] & qc.MISSING) != 0)
    assert (out / "_SUCCESS").exists()
    assert "source_files" in ds.attrs and PRSA.split("/")[-1] in ds.attrs["source_files"]


def test_sources_merge_and_flags_stay(shared_data, tmp_path):
    g = tmp_path / "g.csv"
    # a generic station in the same window, one negative value (kept, flagged RANGE)
    g.write_text("station,time,species,value,units,lon,lat\n"
                 "X1,2017-01-14T19:00:00Z,PM2.5,-5,ug m-3,116.0,40.0\n"
                 "X1,2017-01-14T20:00:00Z,PM2.5,50,ug m-3,116.0,40.0\n")
    cfg = _config(tmp_path, [{"path": str(shared_data / PRSA), "format": "prsa"},
                             {"path": "g.csv", "format": "generic"}], shared_data)
    out = tmp_path / "obs"
    assert main(["observations", str(cfg), "--cycle", "2017-01-15T00", "--out",
                 str(out)]) == 0
    ds = xr.open_dataset(out / "obs.nc")
    assert ds.sizes["station"] == 13
    x = ds.sel(station="X1")
    assert float(x["PM25"].isel(time=1)) == -5.0  # never dropped ...
    assert int(x["PM25_qc"].isel(time=1)) & qc.RANGE  # ... flagged
    assert int(x["PM25_qc"].isel(time=0)) & qc.MISSING  # no row for 18 UTC
    assert float(x["lon"]) == 116.0


def test_stage_errors(tmp_path, capsys):
    cfg = _config(tmp_path, [])
    assert main(["observations", str(cfg), "--cycle", "2017-01-15T00", "--out",
                 str(tmp_path / "o")]) == 2
    assert "sources is empty" in capsys.readouterr().err
    cfg = _config(tmp_path, [{"path": "nothing_*.csv", "format": "generic"}])
    assert main(["observations", str(cfg), "--cycle", "2017-01-15T00", "--out",
                 str(tmp_path / "o")]) == 2
    assert "no observation files match" in capsys.readouterr().err
    assert main(["observations", str(cfg), "--cycle", "2017-01-15", "--out",
                 str(tmp_path / "o")]) == 2
    assert "YYYY-MM-DDTHH" in capsys.readouterr().err
