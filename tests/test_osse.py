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


def test_bootstrap_gain_over_withheld_stations():
    """The harness's bootstrap of the gain over the withheld stations: the full-sample gain
    lies inside the 5-95 % interval; equal errors give 0 everywhere; one station carrying the
    whole improvement makes the interval wide."""
    import numpy as np
    import osse

    free = np.array([4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0])
    assert np.all(osse.bootstrap_gain(free, free) == 0.0)
    ana = free.copy()
    ana[0] = 0.0  # one station perfect, the others unchanged
    g = osse.bootstrap_gain(free, ana)
    full = 1.0 - np.sqrt(ana.mean() / free.mean())
    lo, hi = np.percentile(g, [5, 95])
    assert lo <= full <= hi and lo == 0.0 and hi > 2 * full
    np.testing.assert_array_equal(g, osse.bootstrap_gain(free, ana))  # reproducible
