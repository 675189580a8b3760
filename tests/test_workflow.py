"""The Snakemake workflow parses, validates the config through aqforecast and plans the DAG."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _snakemake():
    exe = Path(sys.executable).parent / "snakemake"
    return str(exe) if exe.exists() else shutil.which("snakemake")


def test_dry_run_plans_the_cycle(tmp_path):
    exe = _snakemake()
    if exe is None:
        pytest.skip("snakemake not installed")
    res = subprocess.run([exe, "-n", "--cores", "2", "--config", f"results={tmp_path}"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    for rule in ("grid", "forecast", "products", "bulletin", "all"):
        assert rule in res.stdout


def test_profile_mpi_launch(tmp_path):
    exe = _snakemake()
    if exe is None:
        pytest.skip("snakemake not installed")
    res = subprocess.run([exe, "-n", "-p", "--cores", "2", "--config", f"results={tmp_path}",
                          "mpi_ranks=4"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "mpiexec -n 4 aqforecast forecast" in res.stdout
