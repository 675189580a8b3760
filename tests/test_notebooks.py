"""The notebooks (percent-format scripts) run end to end on a small case."""

from __future__ import annotations

import os
import subprocess
import sys

from forecast_case import REPO, small_config


def test_forecast_api_notebook_runs(tmp_path):
    case = small_config(tmp_path, hours=3, tags=False)
    env = dict(os.environ, AQF_CONFIG=str(case))
    res = subprocess.run([sys.executable, str(REPO / "notebooks" / "01_forecast_api.py")],
                         capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [ln for ln in res.stdout.splitlines() if ln.endswith(" ppb")]
    assert len(lines) == 3, res.stdout  # one surface-O3 value per hour
    values = [float(ln.split()[-2]) for ln in lines]
    assert all(5.0 < v < 200.0 for v in values), values
    assert "'emitted'" in res.stdout and "'boundary'" in res.stdout
