"""The command line: --help everywhere, validate summary, precise errors and exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest
import xarray as xr
import yaml

from aqforecast.cli import build_parser, main
from aqforecast.config import read_yaml


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return list(action.choices)


@pytest.mark.parametrize("cmd", _subcommands())
def test_every_subcommand_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as ei:
        main([cmd, "--help"])
    assert ei.value.code == 0
    assert "usage: aqforecast" in capsys.readouterr().out


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "aqforecast.cli", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for cmd in _subcommands():
        assert cmd in out


def test_validate_prints_summary(sample_config, capsys):
    assert main(["validate", str(sample_config), "--config-only"]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "d01: 54 x 48 x 15 cells of 3 km" in out and "nest of d01" in out


def test_validate_broken_copy_exits_nonzero(sample_config, tmp_path, capsys):
    data = read_yaml(sample_config)
    data["domains"][1]["i_parent_start"] = 60
    bad = tmp_path / "broken.yaml"
    bad.write_text(yaml.safe_dump(data))
    assert main(["validate", str(bad), "--config-only"]) == 2
    err = capsys.readouterr().err
    assert "broken.yaml" in err and "must lie inside its parent" in err


def test_grid_command_writes_cf_files(sample_config, tmp_path):
    assert main(["grid", str(sample_config), "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["_SUCCESS", "grid_d01.nc", "grid_d02.nc"]
    ds = xr.open_dataset(tmp_path / "grid_d02.nc")
    assert ds.sizes["x"] == 36 and ds.attrs["Conventions"] == "CF-1.10"
