"""Shared fixtures: paths to the repository, the sample config and the shared real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

def _find_shared_data() -> Path:
    """The real reference data: $AQF_SHARED_DATA, the workplace's shared/data beside the
    repository, or the copy vendored in tests/data/shared (licences in its SOURCES.csv)."""
    candidates = [os.environ.get("AQF_SHARED_DATA"), REPO.parent / "shared" / "data",
                  "/work/shared/data", REPO / "tests" / "data" / "shared"]
    for c in candidates:
        if c and (Path(c) / "met_wrf").exists():
            return Path(c)
    return REPO / "tests" / "data" / "shared"


SHARED_DATA = _find_shared_data()
SAMPLE_CONFIG = REPO / "config" / "config.yaml"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set AQF_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_config() -> Path:
    return SAMPLE_CONFIG
