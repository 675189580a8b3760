"""The OSSE of benchmarks/osse.py on the small case (slow: ~90 s): assimilating stations improves
the day-1 forecast at the stations that were withheld, for PM2.5 and O3."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


@pytest.mark.slow
def test_osse_gain_at_withheld_stations(tmp_path):
    import osse

    table = osse.run(days=1, spinup=6, work=tmp_path / "osse", log=lambda *a: None)
    gain = table.set_index("quantity")["gain"]
    assert gain["PM25"] > 0.0, table
    assert gain["O3"] > -0.02, table  # O3 not degraded
