"""A small nested forecast case for tests: the sample config shrunk, with met generated on the fly.

d01: 24 x 21 cells of 3 km; d02: 12 x 12 cells of 1 km; 8 layers; 2 tag regions. The met is made
by ``data_sample/make_sample_met.py`` for the hours needed (a few seconds).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from aqforecast.config import load_config, read_yaml

REPO = Path(__file__).resolve().parents[1]


def small_config(tmp: Path, hours: int = 6, tags: bool = True, chemistry: bool = True,
                 emissions: bool = True, restart_every: int = 1) -> Path:
    """Write a small config (and its met) under ``tmp``; return the config path."""
    tmp.mkdir(parents=True, exist_ok=True)
    data = read_yaml(REPO / "config" / "config.yaml")
    data["base_dir"] = str(REPO)
    data["vertical"] = {"nz": 8, "p_top_pa": 10000.0, "first_layer_m": 40.0}
    data["domains"] = [
        {"name": "d01", "dx_m": 3000.0, "nx": 24, "ny": 21, "centre_lon": 120.3,
         "centre_lat": 30.2},
        {"name": "d02", "parent": "d01", "ratio": 3, "dx_m": 1000.0, "nx": 12, "ny": 12,
         "i_parent_start": 9, "j_parent_start": 8},
    ]
    data["time"]["lead_hours"] = hours
    data["time"]["windows"] = [{"until_hours": 3, "every_hours": 1},
                               {"until_hours": max(hours, 4), "every_hours": 1}]
    met = tmp / "met"
    data["inputs"]["met"]["paths"] = {"d01": str(met / "wrfout_d01_*"),
                                      "d02": str(met / "wrfout_d02_*")}
    if not emissions:
        data["inputs"]["emissions"] = {}
    data["tags"]["enabled"] = tags
    data["regions"] = data["regions"][:1] + data["regions"][3:4]
    data["chemistry"]["enabled"] = chemistry
    data["outputs"] = {"dir": str(tmp / "results"), "levels": [0, 3], "tag_levels": [0],
                       "tag_every_hours": 1, "restart_every_hours": restart_every,
                       "compression_level": 1}
    data["time"]["start"] = data["time"]["start"].isoformat() if hasattr(
        data["time"]["start"], "isoformat") else data["time"]["start"]
    path = tmp / "small.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    if not (met / "done").exists():
        subprocess.run([sys.executable, str(REPO / "data_sample" / "make_sample_met.py"),
                        "--config", str(path), "--out", str(met), "--hours", str(hours + 1)],
                       check=True, capture_output=True)
        (met / "done").write_text("ok")
    load_config(path)  # validate
    return path


def exact_small_config(tmp: Path, hours: int = 41, tags: bool = True) -> Path:
    """:func:`small_config` with donor-cell (linear) transport and float64 files, so that the
    tags are each source's exact share on the files (scenario scoring, inversion Jacobians)."""
    import yaml

    from aqforecast.config import read_yaml

    case = small_config(tmp, hours=hours, tags=tags)
    data = read_yaml(case)
    data["time"]["start"] = str(data["time"]["start"])
    data["transport"] = {"advection_scheme": "donor_cell"}
    data["outputs"]["dtype"] = "float64"
    data["tags"]["dtype"] = "float64"
    case.write_text(yaml.safe_dump(data, sort_keys=False))
    return case
