"""The emission scaling table (issue #16, CONTRACTS.md "Scaling table"): rows of (region, sector,
pollutant, factor, optional [start, end) UTC window, extra columns); overlapping rows multiply,
unlisted sources keep 1, ``*`` matches all, files in CSV and NetCDF with errors naming the file,
the row and the column."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from aqforecast.emissions.inventory import POLLUTANTS
from aqforecast.emissions.scaling import (
    ScalingTable,
    ScalingTableError,
    read_scaling_table,
    write_scaling_table,
)
from aqforecast.io import InputFileError

REGIONS = ("Hangzhou", "Ningbo", "outside")
SECTORS = ("industry", "power", "transport")


def _ix(region, sector, pollutant):
    return REGIONS.index(region), SECTORS.index(sector), POLLUTANTS.index(pollutant)


def test_unlisted_sources_keep_one_and_wildcards_match_all():
    t = ScalingTable.from_rows([
        {"region": "Hangzhou", "sector": "power", "pollutant": "SO2", "factor": 0.5},
        {"region": "*", "sector": "transport", "pollutant": "*", "factor": 0.8},
    ])
    f = t.resolve(REGIONS, SECTORS)
    assert f.shape == (3, 3, len(POLLUTANTS))
    assert f[_ix("Hangzhou", "power", "SO2")] == 0.5
    assert np.all(f[:, SECTORS.index("transport")] == 0.8)          # outside included
    expected = np.ones_like(f)
    expected[_ix("Hangzhou", "power", "SO2")] = 0.5
    expected[:, SECTORS.index("transport")] = 0.8
    np.testing.assert_array_equal(f, expected)


def test_overlapping_rows_multiply_and_order_does_not_matter():
    rows = [
        {"region": "Hangzhou", "sector": "industry", "pollutant": "NOx", "factor": 0.7},
        {"region": "*", "sector": "industry", "pollutant": "NOx", "factor": 0.9},
        {"region": "Hangzhou", "sector": "*", "pollutant": "*", "factor": 1.25},
    ]
    f = ScalingTable.from_rows(rows).resolve(REGIONS, SECTORS)
    g = ScalingTable.from_rows(rows[::-1]).resolve(REGIONS, SECTORS)
    assert f[_ix("Hangzhou", "industry", "NOx")] == pytest.approx(0.7 * 0.9 * 1.25, rel=1e-15)
    assert f[_ix("Ningbo", "industry", "NOx")] == 0.9
    assert f[_ix("Hangzhou", "power", "CO")] == 1.25
    np.testing.assert_allclose(f, g, rtol=1e-15)
    # concat = the rows of both: a scenario on top of an inversion posterior
    both = ScalingTable.concat([ScalingTable.from_rows(rows[:1]),
                                ScalingTable.from_rows(rows[1:])])
    np.testing.assert_allclose(both.resolve(REGIONS, SECTORS), f, rtol=1e-15)


def test_windows_hold_on_half_open_intervals():
    start = datetime(2026, 7, 20, 6, tzinfo=timezone.utc)
    end = datetime(2026, 7, 20, 18, tzinfo=timezone.utc)
    t = ScalingTable.from_rows([
        {"region": "Ningbo", "sector": "power", "pollutant": "SO2", "factor": 0.5,
         "start": start, "end": end},
        {"region": "Ningbo", "sector": "power", "pollutant": "SO2", "factor": 0.8,
         "start": "2026-07-20T12:00Z"},                                 # open-ended
        {"region": "Ningbo", "sector": "power", "pollutant": "SO2", "factor": 0.9},
    ])
    k = _ix("Ningbo", "power", "SO2")

    def at(when):
        return t.resolve(REGIONS, SECTORS, time=when)[k]

    assert at("2026-07-20T05:59:59") == 0.9
    assert at("2026-07-20T06:00") == pytest.approx(0.45)                # start is inside
    assert at(np.datetime64("2026-07-20T12:00")) == pytest.approx(0.36)
    assert at("2026-07-20T18:00") == pytest.approx(0.72)                # end is outside
    assert at("2026-07-20T14:00+08:00") == pytest.approx(0.45)          # 06 UTC
    assert t.resolve(REGIONS, SECTORS)[k] == 0.9                        # whole-run rows only
    assert t.window_edges() == (start, datetime(2026, 7, 20, 12, tzinfo=timezone.utc), end)


def test_pollutant_spellings_and_pm10():
    t = ScalingTable.from_rows([
        {"region": "Hangzhou", "sector": "industry", "pollutant": "PM10", "factor": 0.6},
        {"region": "Hangzhou", "sector": "industry", "pollutant": "VOC", "factor": 0.5},
    ])
    assert len(t) == 3                     # PM10 = PM25 and PMC
    f = t.resolve(REGIONS, SECTORS)
    assert f[_ix("Hangzhou", "industry", "PM25")] == 0.6
    assert f[_ix("Hangzhou", "industry", "PMC")] == 0.6
    assert f[_ix("Hangzhou", "industry", "NMVOC")] == 0.5


@pytest.mark.parametrize("suffix", [".csv", ".nc"])
def test_file_round_trip_keeps_factors_windows_and_extra_columns(tmp_path, suffix):
    t = ScalingTable.from_rows([
        {"region": "Hangzhou", "sector": "power", "pollutant": "SO2", "factor": 0.1 + 0.2,
         "sigma_ln": 0.31, "note": "posterior"},
        {"region": "*", "sector": "transport", "pollutant": "NOx", "factor": 0.75,
         "start": "2026-07-20T00:00Z", "end": "2026-07-21T00:00Z", "sigma_ln": 0.12},
    ])
    path = write_scaling_table(t, tmp_path / f"s{suffix}")
    back = read_scaling_table(path)
    assert back.source == str(path)
    assert [r.factor for r in back.rows] == [0.1 + 0.2, 0.75]            # full precision
    assert [(r.start, r.end) for r in back.rows] == [(r.start, r.end) for r in t.rows]
    assert back.rows[0].extra["sigma_ln"] == pytest.approx(0.31)
    assert "sigma_ln" in back.extra_columns
    for when in ("2026-07-19T12:00", "2026-07-20T12:00", "2026-07-21T00:00"):
        np.testing.assert_array_equal(back.resolve(REGIONS, SECTORS, time=when),
                                      t.resolve(REGIONS, SECTORS, time=when))
    assert not list(tmp_path.glob("*.tmp*"))                             # written atomically


def test_csv_errors_name_file_line_and_column(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("region,sector,pollutant,factor\nHangzhou,power,SO2,0.5\n"
                 "Hangzhou,power,SO2,-1\n")
    with pytest.raises(ScalingTableError, match=r"bad\.csv.*line 3.*factor"):
        read_scaling_table(p)
    p.write_text("region,sector,pollutant,factor\nHangzhou,power,XX,0.5\n")
    with pytest.raises(InputFileError, match=r"bad\.csv.*line 2.*pollutant"):
        read_scaling_table(p)
    p.write_text("region,sector,factor\nHangzhou,power,0.5\n")
    with pytest.raises(ScalingTableError, match=r"bad\.csv.*pollutant"):
        read_scaling_table(p)
    p.write_text("region,sector,pollutant,factor,start,end\n"
                 "Hangzhou,power,SO2,0.5,2026-07-21,2026-07-20\n")
    with pytest.raises(ScalingTableError, match=r"bad\.csv.*line 2.*end"):
        read_scaling_table(p)
    with pytest.raises(ScalingTableError, match="does not exist"):
        read_scaling_table(tmp_path / "missing.csv")


def test_check_refuses_unknown_region_and_sector_naming_the_row(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("region,sector,pollutant,factor\nHangzhou,power,SO2,0.5\n"
                 "Atlantis,power,SO2,0.5\n")
    t = read_scaling_table(p)
    with pytest.raises(ScalingTableError, match=r"s\.csv.*line 3.*region.*Atlantis"):
        t.check(REGIONS[:2], SECTORS)
    p.write_text("region,sector,pollutant,factor\noutside,shipping,SO2,0.5\n")
    with pytest.raises(KeyError, match="shipping"):
        read_scaling_table(p).resolve(REGIONS, SECTORS)
    # outside is always a valid region
    ScalingTable({("outside", "power", "SO2"): 0.5}).check(REGIONS[:2], SECTORS)
