"""Station readers on the real files (row counts, units) and on broken copies (precise errors);
QC flags on synthetic and real series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aqforecast.observations import (ObservationFormatError, qc_flags, read_cnemc, read_prsa,
                                     read_shanghai_uci, read_station_coords, summarize_flags,
                                     to_dataset)
from aqforecast.observations import qc

PRSA_W = "obs_beijing_prsa/PRSA_12sites_2016-12-01_2017-02-28_hourly.csv"
PRSA_S = "obs_beijing_prsa/PRSA_12sites_2016-06-01_2016-08-31_hourly.csv"
SH = "obs_shanghai_uci5city/ShanghaiPM_2013-01-29_2015-12-31_hourly.csv"
CN_DAILY = "obs_cnemc_national_snapshot_2017-04/20170411_daily_city_obs.txt"
CN_O3 = "obs_cnemc_national_snapshot_2017-04/20170411_O3_hourly_city_obs.txt"


def test_prsa_real(shared_data):
    w = read_prsa(shared_data / PRSA_W)
    s = read_prsa(shared_data / PRSA_S)
    assert len(w) == 25920 and len(s) == 26496          # 12 stations x 2160 / 2208 hours
    assert w["station"].nunique() == 12
    assert w["time"].min() == pd.Timestamp("2016-12-01 00:00")
    assert w["time"].max() == pd.Timestamp("2017-02-28 23:00")
    assert w.attrs["units"]["CO"] == "mg m-3" and w.attrs["units"]["PM2.5"] == "ug m-3"
    assert w["CO"].iloc[0] == pytest.approx(0.4)        # file: 400.0 ug m-3
    assert w["PM2.5"].isna().sum() == 340                # empty fields -> NaN
    ds = to_dataset(w, read_station_coords(shared_data / "obs_beijing_prsa" /
                                           "stations_beijing_prsa_cnemc.csv"))
    assert dict(ds.sizes) == {"time": 2160, "station": 12}
    assert ds["CO"].attrs["units"] == "mg m-3"
    assert ds["lon"].sel(station="Dongsi") == pytest.approx(116.4174)


def test_shanghai_real(shared_data):
    df = read_shanghai_uci(shared_data / SH)
    assert len(df) == 3 * 25602                # 25602 hourly rows x 3 sites
    assert sorted(df["station"].unique()) == ["Jingan", "US Post", "Xuhui"]
    assert df.attrs["units"]["PM2.5"] == "ug m-3"
    first = df[(df.station == "Jingan")].iloc[0]
    assert first["time"] == pd.Timestamp("2013-01-29 06:00") and first["PM2.5"] == 30


def test_cnemc_real(shared_data, caplog):
    d = read_cnemc(shared_data / CN_DAILY)
    assert d.attrs["kind"] == "daily"
    assert len(d) == 1448                                 # 1449 lines, one exact duplicate
    assert "dropped 1 exact duplicate" in caplog.text
    assert d.attrs["units"]["CO"] == "mg m-3"
    assert list(d.columns) == ["station", "time", "lon", "lat", "SO2", "NO2", "CO", "O3", "PM10",
                               "PM2.5"]
    h = read_cnemc(shared_data / CN_O3)
    assert list(h.columns[-1:]) == ["O3"] and len(h) == 1448 * 24
    assert h["time"].nunique() == 24


def test_coords_real(shared_data, caplog):
    c = read_station_coords(shared_data / "obs_cnemc_station_coords" /
                            "cnemc_stations_zhejiang_shanghai.csv")
    assert len(c) == 57
    assert c.loc[c.code == "1223A", "lon"].item() == pytest.approx(120.2072)
    assert np.isnan(c.loc[c.code == "1254A", "lon"].item())
    assert "1254A" in caplog.text
    sh = read_station_coords(shared_data / "obs_shanghai_uci5city" / "stations_shanghai.csv")
    assert sh.set_index("station").loc["PM_Xuhui", "code"] == "1144A"


def _broken(tmp_path, shared_data, rel, edit, name="broken.csv", n=30):
    lines = (shared_data / rel).read_text(encoding="utf-8").splitlines()[:n]
    lines = edit(lines)
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def test_prsa_broken_value(tmp_path, shared_data):
    def edit(lines):
        f = lines[4].split(",")
        f[5] = "abc"
        lines[4] = ",".join(f)
        return lines
    p = _broken(tmp_path, shared_data, PRSA_W, edit)
    with pytest.raises(ObservationFormatError) as e:
        read_prsa(p)
    msg = str(e.value)
    assert str(p) in msg and "line 5" in msg and "'PM2.5'" in msg and "'abc'" in msg
    assert "expected a finite number" in msg
    assert e.value.line == 5 and e.value.column == "PM2.5"


def test_prsa_broken_header_date_duplicate(tmp_path, shared_data):
    p = _broken(tmp_path, shared_data, PRSA_W, lambda l: [l[0].replace("PM10", "PM_10")] + l[1:])
    with pytest.raises(ObservationFormatError, match=r"line 1.*expected header No,year"):
        read_prsa(p)

    def bad_month(lines):
        f = lines[9].split(",")
        f[2] = "13"
        lines[9] = ",".join(f)
        return lines
    p = _broken(tmp_path, shared_data, PRSA_W, bad_month)
    with pytest.raises(ObservationFormatError, match=r"line 10, column 'month': got '13'; "
                                                     r"expected a valid calendar date"):
        read_prsa(p)

    def feb_30(lines):  # each field in range, the date not
        f = lines[9].split(",")
        f[2], f[3] = "2", "30"
        lines[9] = ",".join(f)
        return lines
    p = _broken(tmp_path, shared_data, PRSA_W, feb_30)
    with pytest.raises(ObservationFormatError, match=r"line 10, column 'year/month/day/hour': "
                                                     r"got '2016-2-30-8'; expected a valid"):
        read_prsa(p)

    def dup(lines):
        f = lines[3].split(",")
        f[5] = "999.0"
        return lines + [",".join(f)]
    p = _broken(tmp_path, shared_data, PRSA_W, dup)
    with pytest.raises(ObservationFormatError, match="conflicting duplicate"):
        read_prsa(p)


def test_prsa_short_row(tmp_path, shared_data):
    p = _broken(tmp_path, shared_data, PRSA_W, lambda l: l[:7] + [l[7] + ",extra"] + l[8:])
    with pytest.raises(ObservationFormatError, match=r"line 8"):
        read_prsa(p)


def test_cnemc_broken(tmp_path, shared_data):
    p = _broken(tmp_path, shared_data, CN_DAILY,
                lambda l: l[:2] + [" ".join(l[2].split()[:-1])] + l[3:], "d.txt")
    with pytest.raises(ObservationFormatError,
                       match=r"d\.txt, line 3: got .*; expected 12 fields like the first row"):
        read_cnemc(p)
    p = _broken(tmp_path, shared_data, CN_DAILY,
                lambda l: l[:5] + [l[5].replace(l[5].split()[7], "x9")] + l[6:], "e.txt")
    with pytest.raises(ObservationFormatError, match=r"line 6, column 'NO2': got 'x9'"):
        read_cnemc(p)

    def bad_lat(lines):
        f = lines[1].split()
        f[5] = "95.0"
        return [lines[0], " ".join(f)] + lines[2:]
    p = _broken(tmp_path, shared_data, CN_DAILY, bad_lat, "f.txt")
    with pytest.raises(ObservationFormatError, match=r"line 2, column 'lat': got '95.0'"):
        read_cnemc(p)


def test_coords_broken(tmp_path, shared_data):
    rel = "obs_cnemc_station_coords/cnemc_stations_zhejiang_shanghai.csv"
    p = _broken(tmp_path, shared_data, rel, lambda l: l[:3] + [l[3].replace("31.3008", "91.3")]
                + l[4:])
    with pytest.raises(ObservationFormatError, match=r"line 4, column 'lat': got '91.3'"):
        read_station_coords(p)
    p = _broken(tmp_path, shared_data, rel, lambda l: ["a,b,c"] + l[1:])
    with pytest.raises(ObservationFormatError, match="CNEMC station list header"):
        read_station_coords(p)
    with pytest.raises(FileNotFoundError):
        read_prsa(tmp_path / "nope.csv")


def _series(values, species="PM2.5"):
    t = pd.date_range("2017-01-01", periods=len(values), freq="h")
    df = pd.DataFrame({"time": t, "station": "A", species: np.asarray(values, float)})
    df.attrs["units"] = {species: qc.EXPECTED_UNITS[species]}
    return df


def test_qc_flags_synthetic():
    rng = np.random.default_rng(1)
    x = 50 + rng.normal(0, 3, 200)
    x[50] = 400.0            # spike
    x[100:110] = 77.0        # stuck run of 10
    x[150] = -5.0            # out of range
    x[160] = np.nan
    f = qc_flags(_series(x))["PM2.5"].to_numpy()
    assert f[50] & qc.SPIKE and not f[49] & qc.SPIKE and not f[51] & qc.SPIKE
    assert all(f[100:110] & qc.STUCK) and not f[99] & qc.STUCK
    assert f[150] & qc.RANGE and f[160] & qc.MISSING
    assert (f[:40] == 0).all()
    low = _series(np.full(30, 3.0))          # flat at a low value: detection limit, not flagged
    assert (qc_flags(low)["PM2.5"] & qc.STUCK == 0).all()


def test_qc_unit_and_consistency():
    co = _series(np.full(48, 800.0) + np.arange(48), "CO")   # CO in ug m-3 declared as mg m-3
    assert (qc_flags(co)["CO"] & qc.UNIT != 0).all()
    co.attrs["units"] = {"CO": "ug m-3"}
    with pytest.raises(ValueError, match="CO is declared in 'ug m-3'"):
        qc_flags(co)
    df = _series([10.0, 80.0, 20.0])
    df["PM10"] = [20.0, 50.0, 30.0]
    df.attrs["units"]["PM10"] = "ug m-3"
    f = qc_flags(df)
    assert f["PM2.5"].tolist()[1] & qc.INCONSISTENT and not f["PM2.5"].tolist()[0]
    masked = qc.mask_flagged(_series([1.0, -3.0, 2.0]), qc_flags(_series([1.0, -3.0, 2.0])))
    assert np.isnan(masked["PM2.5"].iloc[1]) and masked["PM2.5"].iloc[2] == 2.0


def test_qc_real_prsa(shared_data):
    w = read_prsa(shared_data / PRSA_W)
    s = summarize_flags(qc_flags(w))
    assert s.loc["missing", "PM2.5"] == 340
    assert s.loc["range"].sum() == 0 and s.loc["unit"].sum() == 0
    assert s.loc["stuck", "O3"] > 0      # known flat-filled stretches in the PRSA O3 series
