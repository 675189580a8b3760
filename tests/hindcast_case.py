"""Shared by the Beijing hindcast tests: the case's data script as a module."""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def data_script():
    """``workflow/scripts/hindcast_beijing_data.py`` imported as a module (it is a script, not
    part of the package)."""
    path = REPO / "workflow" / "scripts" / "hindcast_beijing_data.py"
    spec = importlib.util.spec_from_file_location("hindcast_beijing_data", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
