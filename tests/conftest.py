"""Shared fixtures: paths to the repository, the sample config and the shared real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("AQF_SHARED_DATA", REPO.parent / "shared" / "data"))
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
