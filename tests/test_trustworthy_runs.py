"""Trustworthy runs (issue 17): bad input is an exit-2 error naming the file and what was
expected, before any work; a run directory holds one run, locked, refused when it holds another
(unless --resume / --overwrite), marked complete by ``_SUCCESS``; restarts kept as configured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from forecast_case import small_config

from aqforecast.cli import main
from aqforecast.config import ConfigError, load_config, read_yaml
from aqforecast.io import InputFileError
from aqforecast.io.rundir import LOCK_NAME, SUCCESS_NAME, claim_run_dir, write_success

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "config" / "config.yaml"


def _snapshot(d: Path) -> dict:
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(d.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------ config files
@pytest.mark.parametrize("name, content, expect", [
    ("duplicate", SAMPLE.read_text() + "\ntime:\n  lead_hours: 24\n",
     ["duplicate key 'time'", "first given on line", "line 1"]),
    ("date", SAMPLE.read_text().replace("start: 2026-07-20", "start: 2026-02-30"),
     ["2026-02-30", "not a valid date", "line 37"]),
])
def test_bad_yaml_is_an_error_with_the_line(tmp_path, capsys, name, content, expect):
    path = tmp_path / f"{name}.yaml"
    path.write_text(content)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err
    for e in expect:
        assert e in err, err


def test_billion_laughs_is_refused_fast(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="aliases expand this document to [0-9,]+ values"):
        load_config(path)
    with pytest.raises(ConfigError, match="aliases expand"):
        read_yaml(path)
    # a few aliases (as yaml.dump writes for shared objects) are fine
    ok = tmp_path / "ok.yaml"
    ok.write_text("a: &x [1, 2]\nb: *x\n")
    assert read_yaml(ok) == {"a": [1, 2], "b": [1, 2]}


@pytest.mark.parametrize("raw, expect", [
    ("name: 杭州\n".encode("gbk"), "not UTF-8"),
    ("name: x\n".encode("utf-16"), "NUL bytes"),
    (b"\x00\x01\x02\xff", "NUL bytes"),
])
def test_non_utf8_config_is_an_error(tmp_path, raw, expect):
    path = tmp_path / "c.yaml"
    path.write_bytes(raw)
    with pytest.raises(ConfigError, match=expect) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_utf8_bom_config_is_read(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + SAMPLE.read_bytes())
    data = yaml.safe_dump(read_yaml(path), sort_keys=False)
    assert "hangzhou" in data


# ------------------------------------------------------------------------------ run directory
@pytest.mark.parametrize("lead", ["0", "-6", "400"])
def test_lead_hours_out_of_range(tmp_path, capsys, lead):
    out = tmp_path / "out"
    assert main(["forecast", str(SAMPLE), "--lead-hours", lead, "--out", str(out),
                 "--no-progress"]) == 2
    assert "1..360" in capsys.readouterr().err
    assert not out.exists()  # refused before any work


def test_claim_refuses_another_run_and_overwrite_removes_only_its_outputs(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / "conc_d01.nc").write_text("old")
    (d / ".parts" / "conc_d01").mkdir(parents=True)
    (d / "notes.txt").write_text("mine")
    before = _snapshot(d)
    with pytest.raises(InputFileError, match="holds the outputs of another forecast") as info:
        claim_run_dir(d, what="forecast")
    assert str(d) in str(info.value) and "--resume" in str(info.value)
    assert _snapshot(d) == before  # nothing touched, no lock left behind
    with claim_run_dir(d, overwrite=True) as claim:
        assert (d / LOCK_NAME).exists() and claim.path == d
        assert sorted(p.name for p in d.iterdir()) == [LOCK_NAME, "notes.txt"]
    assert not (d / LOCK_NAME).exists()


def test_lock_guards_a_directory(tmp_path):
    d = tmp_path / "run"
    with claim_run_dir(d):
        with pytest.raises(InputFileError, match=f"process {os.getpid()}"):
            claim_run_dir(d)
    # a lock left by a process that has ended is taken over
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    import socket

    (d / LOCK_NAME).write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(),
                                           "since": "2026-01-01T00:00:00Z"}))
    with claim_run_dir(d):
        assert json.loads((d / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_unusable_output_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputFileError, match="cannot create the output directory"):
        claim_run_dir(blocker / "out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_output_directory(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        with pytest.raises(InputFileError, match="not writable"):
            claim_run_dir(d)
    finally:
        d.chmod(0o700)


def test_success_manifest(tmp_path):
    (tmp_path / "a.nc").write_bytes(b"abc")
    sub = tmp_path / "maps"
    sub.mkdir()
    (sub / "m.png").write_bytes(b"png")
    marker = write_success(tmp_path, [tmp_path / "a.nc", sub / "m.png"], {"stage": "x"})
    man = json.loads(marker.read_text())
    assert man["stage"] == "x"
    assert [f["path"] for f in man["files"]] == ["a.nc", "maps/m.png"]
    # sha256("abc")
    assert man["files"][0]["sha256"].startswith("ba7816bf8f01cfea")
    assert man["files"][0]["bytes"] == 3
    with pytest.raises(InputFileError, match="not written"):
        write_success(tmp_path, [tmp_path / "missing.nc"])


# ------------------------------------------------------------------------------ forecasts
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return small_config(tmp_path_factory.mktemp("trust"), hours=4, tags=True,
                        restart_every=1)


def test_rerun_resume_and_products_contracts(small, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["forecast", str(small), "--out", str(out), "--no-progress"]
    assert main(args + ["--lead-hours", "2"]) == 0
    capsys.readouterr()
    # the run is complete: its manifest lists the outputs
    man = json.loads((out / SUCCESS_NAME).read_text())
    listed = {f["path"] for f in man["files"]}
    assert {"conc_d01.nc", "conc_d02.nc", "tags_d01.nc", "budget_d01.csv"} <= listed
    assert man["lead_hours"] == 2
    # restarts: the latest is kept, and the one at 24 h (not reached): only the latest here
    stamps = sorted(p.name for p in (out / "restart").iterdir() if p.is_dir())
    assert stamps == ["2026-07-20T02"], stamps
    # a second run into the same directory is refused, nothing changed
    before = _snapshot(out)
    assert main(args + ["--lead-hours", "2"]) == 2
    err = capsys.readouterr().err
    assert "holds the outputs of another forecast" in err and str(out) in err
    assert _snapshot(out) == before
    # --resume with a changed config (tags off) is refused, naming the restart and the key
    data = read_yaml(small)
    data["tags"]["enabled"] = False
    data["time"]["start"] = str(data["time"]["start"])
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["forecast", str(changed), "--lead-hours", "4", "--out", str(out),
                 "--no-progress", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "restart_d01.nc" in err and "tags" in err and "--overwrite" in err
    assert _snapshot(out) == before
    # products: a missing domain file is an error before any work
    prod = tmp_path / "products"
    (out / "conc_d02.nc").rename(tmp_path / "aside.nc")
    assert main(["products", str(small), "--run", str(out), "--out", str(prod),
                 "--no-maps"]) == 2
    assert "conc_d02.nc" in capsys.readouterr().err
    assert not prod.exists()
    (tmp_path / "aside.nc").rename(out / "conc_d02.nc")
    # ... and so is a run without its completion marker
    (out / SUCCESS_NAME).rename(tmp_path / "success")
    assert main(["products", str(small), "--run", str(out), "--out", str(prod),
                 "--no-maps"]) == 2
    assert "did not finish" in capsys.readouterr().err
    (tmp_path / "success").rename(out / SUCCESS_NAME)
    # --overwrite replaces it
    assert main(args + ["--overwrite", "--lead-hours", "3"]) == 0
    assert json.loads((out / SUCCESS_NAME).read_text())["lead_hours"] == 3


def test_restart_retention(small, tmp_path):
    data = read_yaml(small)
    data["time"]["start"] = str(data["time"]["start"])
    data["outputs"]["restart_keep_hours"] = [1, 2]
    cfg = tmp_path / "keep.yaml"
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "run"
    assert main(["forecast", str(cfg), "--lead-hours", "4", "--out", str(out),
                 "--no-progress", "--no-tags"]) == 0
    stamps = sorted(p.name for p in (out / "restart").iterdir() if p.is_dir())
    assert stamps == ["2026-07-20T01", "2026-07-20T02", "2026-07-20T04"], stamps
    assert (out / "restart" / "latest").read_text().strip() == "2026-07-20T04"


@pytest.mark.parametrize("where, value, injected, stopped", [
    ("bulk", float("nan"), "01:45", "02:00"), ("bulk", 1e30, "01:45", "02:00"),
    ("tags", float("inf"), "01:45", "02:00"), ("bulk", float("nan"), "01:15", "01:30")])
def test_a_state_that_breaks_stops_the_run(small, tmp_path, capsys, monkeypatch, where,
                                           value, injected, stopped):
    """A numerical failure (a value injected into d02's bulk NO2 or a tag after the
    chemistry of the step ending at ``injected`` + 15 min): the run stops with exit 2 and a
    message naming the domain, time, species and first (level, row, column) -- at the output
    time 02:00 when the step ends there, else at the next step's chemistry, before its solver
    spends its step limit (100 000) in every cell of a NaN chunk (it took 2.5 min a step) --
    and nothing is written for that time (no restart, no _SUCCESS; the conc files hold no 02
    UTC and no NaN); the restart of 01 UTC is intact. Before, the run went on and ended
    "complete" with NaN in its products."""
    import time

    import numpy as np
    import xarray as xr

    from aqforecast.transport.model import DomainModel

    original = DomainModel._chemistry
    bad_time = np.datetime64(f"2026-07-20T{injected}:00", "s")

    def broken(self, s, t_mid, dt):
        original(self, s, t_mid, dt)
        if self.name == "d02" and self.time == bad_time:
            if where == "bulk":
                self.conc()[self.species.index("NO2"), 3, 5, 7] = value
            else:
                self.tagc[self.interior][2, 4, 5, 7] = value

    monkeypatch.setattr(DomainModel, "_chemistry", broken)
    out = tmp_path / "run"
    tic = time.perf_counter()
    assert main(["forecast", str(small), "--lead-hours", "3", "--out", str(out),
                 "--no-progress"]) == 2
    assert time.perf_counter() - tic < 120
    err = capsys.readouterr().err
    what = "NO2" if where == "bulk" else "tag "
    assert "d02" in err and f"2026-07-20T{stopped}" in err and what in err, err
    if stopped == "02:00" and where == "bulk":
        assert "level 3, row 5, column 7" in err, err
    assert "numerical failure" in err and "--resume" in err
    assert not (out / SUCCESS_NAME).exists()
    stamps = sorted(p.name for p in (out / "restart").iterdir() if p.is_dir())
    assert "2026-07-20T02" not in stamps and "2026-07-20T01" in stamps, stamps
    with xr.open_dataset(out / "restart" / "2026-07-20T01" / "initial_d02.nc") as ds:
        assert np.isfinite(ds["NO2"].values).all()
    for part in out.glob("conc_d0*"):          # whatever parts were flushed: no 02 UTC
        if part.suffix == ".nc":
            with xr.open_dataset(part) as ds:
                assert np.datetime64("2026-07-20T02:00") not in ds["time"].values
                assert all(np.isfinite(ds[v].values).all() for v in ("NO2", "O3"))


@pytest.mark.mpi
def test_an_error_on_one_rank_ends_every_rank(tmp_path):
    """Rank 1 fails while rank 0 waits in a collective: the CLI's handler (abort_all) ends the
    job instead of leaving rank 0 waiting until the wall-clock limit."""
    from test_forecast import _mpiexec

    exe = _mpiexec()
    if exe is None:
        pytest.skip("mpiexec/mpi4py not available")
    script = tmp_path / "fail.py"
    script.write_text(
        "import sys\n"
        "from aqforecast.parallel import abort_all, get_comm\n"
        "comm = get_comm()\n"
        "if comm.rank == 1:\n"
        "    sys.stderr.write('rank 1: input error\\n')\n"
        "    abort_all(2)\n"
        "comm.barrier()\n"
        "print('rank', comm.rank, 'passed the barrier')\n")
    res = subprocess.run([exe, "-n", "2", sys.executable, str(script)], capture_output=True,
                         text=True, timeout=120)
    report = f"rc {res.returncode}\nstdout: {res.stdout}\nstderr: {res.stderr[-2000:]}"
    assert res.returncode != 0, report
    assert "rank 1: input error" in res.stderr, report
    assert "rank 1 passed the barrier" not in res.stdout, report


# ------------------------------------------------------------------------------ met inputs
def _met_copy(small, tmp_path, edit):
    """A copy of the small case whose d01 wrfout file went through ``edit(netCDF4.Dataset)``;
    returns the config path."""
    import shutil

    import netCDF4

    data = read_yaml(small)
    data["time"]["start"] = str(data["time"]["start"])
    src = Path(data["inputs"]["met"]["paths"]["d01"]).parent
    met = tmp_path / "met"
    shutil.copytree(src, met)
    f = sorted(met.glob("wrfout_d01_*"))[0]
    with netCDF4.Dataset(f, "a") as ds:
        edit(ds)
    data["inputs"]["met"]["paths"] = {k: str(met / Path(v).name)
                                      for k, v in data["inputs"]["met"]["paths"].items()}
    cfg = tmp_path / "edited.yaml"
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    return cfg


def _shift_times(ds, first: int, hours: int):
    import numpy as np

    times = ds["Times"][:]
    for r in range(first, times.shape[0]):
        t = np.datetime64(b"".join(times[r]).decode().replace("_", "T")) + \
            np.timedelta64(hours, "h")
        ds["Times"][r] = np.array(list(str(t)[:19].replace("T", "_")), dtype="S1")


def test_met_with_a_missing_day_is_refused(small, tmp_path, capsys):
    cfg = _met_copy(small, tmp_path, lambda ds: _shift_times(ds, 2, 24))
    assert main(["validate", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "no wrfout record between 2026-07-20T01:00:00 and 2026-07-21T02:00:00" in err, err
    assert "met d01" in err
    out = tmp_path / "run"
    assert main(["forecast", str(cfg), "--lead-hours", "3", "--out", str(out),
                 "--no-progress"]) == 2
    assert not (out / "conc_d01.nc").exists()


def test_met_for_the_wrong_dates_is_refused(small, tmp_path, capsys):
    cfg = _met_copy(small, tmp_path, lambda ds: _shift_times(ds, 0, 24))
    assert main(["validate", str(cfg)]) == 2
    assert "do not cover the run 2026-07-20T00:00:00" in capsys.readouterr().err


@pytest.mark.parametrize("var, value, expect", [
    ("U", float("nan"), "variable U has nan at index (0, 1, 2)"),
    ("T2", 1e30, "variable T2 has 1e+30 at index (1, 2)"),
])
def test_corrupt_met_values_are_named(small, tmp_path, capsys, var, value, expect):
    def edit(ds):
        v = ds[var]
        idx = (1, 0, 1, 2) if v.ndim == 4 else (1, 1, 2)
        v[idx] = value

    cfg = _met_copy(small, tmp_path, edit)
    out = tmp_path / "run"
    assert main(["forecast", str(cfg), "--lead-hours", "2", "--out", str(out),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert expect in err.replace("1.0000040951721074e+30", "1e+30"), err  # (float32 file)
    assert "wrfout_d01" in err and "record 1" in err, err


def test_validate_checks_the_inputs(small, tmp_path, capsys):
    assert main(["validate", str(small)]) == 0
    out = capsys.readouterr().out
    assert "met d01: 5 times" in out and "every 60 min" in out and "inventory read" in out, out
    # d01's met pointing at the nest's files: the grid does not match
    data = read_yaml(small)
    data["time"]["start"] = str(data["time"]["start"])
    data["inputs"]["met"]["paths"]["d01"] = data["inputs"]["met"]["paths"]["d02"]
    wrong = tmp_path / "wrong_met.yaml"
    wrong.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["validate", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert "wrfout_d02" in err and "d01" in err, err
    # a met file that is missing
    data["inputs"]["met"]["paths"]["d01"] = str(tmp_path / "nowhere" / "wrfout_d01_*")
    wrong.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["validate", str(wrong)]) == 2
    assert "nowhere" in capsys.readouterr().err


# ------------------------------------------------------------------------------ station files
def _coords_text(shared_data) -> str:
    path = next((shared_data / "obs_cnemc_station_coords").glob("*.csv"))
    return path.read_text(encoding="utf-8-sig")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "gbk", "utf-16"])
def test_station_files_in_the_usual_encodings(shared_data, tmp_path, encoding):
    """The CNEMC station list (Chinese header and names) reads the same in UTF-8, UTF-8 with
    BOM, GBK/GB18030 (detected) and UTF-16 (by its byte-order mark)."""
    from aqforecast.observations import read_station_coords

    text = _coords_text(shared_data)
    ref = read_station_coords(next((shared_data / "obs_cnemc_station_coords").glob("*.csv")))
    p = tmp_path / f"coords_{encoding}.csv"
    p.write_bytes(text.encode(encoding))
    got = read_station_coords(p)
    assert list(got["name"]) == list(ref["name"]) and len(got) == len(ref) > 50
    assert got["lon"].equals(ref["lon"])


def test_declared_encoding_and_bad_station_files(shared_data, tmp_path):
    from aqforecast.observations import ObservationFormatError, read_cnemc, read_station_coords

    text = _coords_text(shared_data)
    p = tmp_path / "gbk.csv"
    p.write_bytes(text.encode("gbk"))
    with pytest.raises(ObservationFormatError, match="declared encoding 'utf-8'"):
        read_station_coords(p, encoding="utf-8")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(ObservationFormatError, match="non-empty") as info:
        read_station_coords(empty)
    assert str(empty) in str(info.value)
    assert isinstance(info.value, InputFileError)  # the CLI's exit-2 errors
    # invalid values: inf, hour 24, year 99999, lat -inf, truncated rows are errors ...
    good = "1001A 2017 4 11 5 116.4 39.9 7 30 0.5 60 80 40\n"
    cases = {
        "inf": (good.replace(" 60 80 40", " inf 80 40"), "'O3'"),
        "hour24": (good.replace(" 11 5 ", " 11 24 "), "valid calendar date"),
        "year": (good.replace("2017", "99999"), "valid calendar date"),
        "lat": (good.replace(" 39.9 ", " -inf "), "'lat'"),
        "truncated": ("1002A 2017 4 11 5 116.5\n", "13 fields"),
    }
    for name, (row, expect) in cases.items():
        f = tmp_path / f"{name}.txt"
        f.write_text(good + row)
        with pytest.raises(ObservationFormatError, match=expect.replace("[", r"\[")) as info:  # noqa
            read_cnemc(f)
        assert str(f) in str(info.value) and "line 2" in str(info.value), (name, info.value)
    # ... negative and absurd concentrations are read and flagged by QC (RANGE), never used
    from aqforecast.observations import qc, qc_flags

    f = tmp_path / "values.txt"
    f.write_text(good + good.replace(" 5 116.4", " 6 116.4").replace(" 60 80 40", " -3 80 1e6"))
    df = read_cnemc(f)
    flags = qc_flags(df)
    assert flags["O3"].iloc[1] & qc.RANGE and flags["PM2.5"].iloc[1] & qc.RANGE
    assert flags["O3"].iloc[0] == 0  # (PM2.5 row 0: UNIT, the median 5e5 is implausible)


# ------------------------------------------------------------------------------ plausibility
def test_species_plausibility_table():
    """Every registered species has an upper bound; the checker names the index and range."""
    from aqforecast import species

    assert set(species.PLAUSIBLE_MAX) == set(species.names())
    assert species.implausible("NO2", [[10.0, 40.0]], "f") is None
    msg = species.implausible("CO", [[100.0, 1e30]], "file.nc")
    assert msg.startswith("file.nc: CO has 1e+30 ppb at index (0, 1)") and "[0, 100000]" in msg
    assert "ppm labelled ppb" in species.implausible("O3", [0.03, 0.06], "f")
    assert "nan" in species.implausible("SO4", [1.0, float("nan")], "f")


def test_inventory_fill_values_are_refused(tmp_path):
    import numpy as np
    import xarray as xr

    from aqforecast.emissions.inventory import read_gridded_inventory

    data = np.ones((1, 2, 3))
    data[0, 1, 2] = 1e30
    xr.Dataset({"SO2": (("sector", "lat", "lon"), data, {"units": "Mg year-1"})},
               coords={"lon": [120.05, 120.15, 120.25], "lat": [30.05, 30.15],
                       "sector": ["power"]}).to_netcdf(tmp_path / "inv.nc")
    with pytest.raises(InputFileError, match=r"inv.nc: variable 'SO2' has 1e\+30 at index "
                                             r"\(0, 0, 1, 2\); expected at most 1e\+07"):
        read_gridded_inventory(tmp_path / "inv.nc")


@pytest.mark.parametrize("variables, message", [
    ({"CO": ("ppb", lambda h, z, y, x: 0 * h + 1e30)}, "CO has 1e+30 ppb"),
    ({"O3": ("ppb", lambda h, z, y, x: 0 * h + 0.04)}, "ppm labelled ppb"),
])
def test_implausible_boundary_files_are_refused(tmp_path, variables, message):
    import numpy as np
    from test_boundary_file import HOURS, T0, write_file

    from aqforecast.io.boundary_file import BoundaryFile

    path = write_file(tmp_path / "bc.nc", variables)
    bf = BoundaryFile(path, ["CO", "O3"])
    w = bf.weights(np.array([120.0, 120.5]), np.array([30.0, 30.2]))
    with pytest.raises(InputFileError) as info:
        bf.sample(T0 + np.timedelta64(int(HOURS[1]), "h"), w, np.full((2, 2), 100.0),
                  np.ones((2, 2)))
    assert str(path) in str(info.value) and message in str(info.value), str(info.value)


def _complete(path: Path) -> bool:
    """A file under its final name is whole: NetCDF opens, CSV/JSON parse, PNG ends in IEND."""
    import pandas as pd
    import xarray as xr

    if path.suffix == ".nc":
        with xr.open_dataset(path) as ds:
            ds.load()
    elif path.suffix == ".csv":
        pd.read_csv(path)
    elif path.suffix in (".json", ".geojson") or path.name == SUCCESS_NAME:
        json.loads(path.read_text())
    elif path.suffix == ".png":
        return path.read_bytes().endswith(b"IEND\xaeB`\x82")  # the PNG end chunk
    return True


def test_kill_during_products_leaves_no_partial_file(small, tmp_path):
    import signal
    import time

    run = tmp_path / "run"
    assert main(["forecast", str(small), "--lead-hours", "2", "--out", str(run),
                 "--no-progress"]) == 0
    prod = tmp_path / "products"
    proc = subprocess.Popen([sys.executable, "-m", "aqforecast.cli", "products", str(small),
                             "--run", str(run), "--out", str(prod)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while time.time() - t0 < 300 and proc.poll() is None:
        if prod.exists() and sum(1 for p in prod.rglob("*") if p.is_file()) >= 3:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if proc.returncode != -signal.SIGKILL:
        pytest.skip("products finished before the kill")
    assert not (prod / SUCCESS_NAME).exists()
    finals = [p for p in prod.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert finals, "killed before any file was written"
    for p in finals:
        assert _complete(p), p
    # a rerun completes and marks the directory
    assert main(["products", str(small), "--run", str(run), "--out", str(prod),
                 "--no-maps"]) == 0
    assert (prod / SUCCESS_NAME).exists()
