"""End-to-end regression against stored reference data (tests/regression/).

The sample case (both domains, chemistry and source tags on) is run for six hours and compared,
variable by variable, with ``reference_<domain>.nc``. Tolerances are the model's own measured
round-off sensitivity (x20, ``tolerances.json``; see ``make_reference.py``): a run on another CPU
passes, a change of any operator's results does not. After an INTENDED change of results
regenerate with ``make regression-reference`` and say why in the commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

HERE = Path(__file__).resolve().parent / "regression"
sys.path.insert(0, str(HERE))
import make_reference as ref  # noqa: E402


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return ref.case_config(tmp_path_factory.mktemp("regression"))


def test_reference_files_are_complete():
    tol = json.loads((HERE / "tolerances.json").read_text())
    assert tol["hours"] == ref.HOURS
    for dom, table in tol["domains"].items():
        with xr.open_dataset(ref.reference_path(dom)) as ds:
            assert set(ds.data_vars) == set(table)
            for name in ds.data_vars:
                v = ds[name].values
                assert np.all(np.isfinite(v)), f"{dom} {name}"
                assert v.min() >= 0.0, f"{dom} {name}: negative reference values"
            # tags of each tagged species add up to the species (surface level)
            for name in ds.data_vars:
                if name.startswith("tag_") and name[4:] in ds:
                    total = ds[name].values.astype(float).sum(axis=0)
                    np.testing.assert_allclose(total, ds[name[4:]].values[0], rtol=1e-4,
                                               atol=1e-6 * float(ds[name[4:]].max()))


def test_compare_detects_a_change():
    """The comparison is not blind: a 1 % change of one field is reported."""
    with xr.open_dataset(ref.reference_path("d01")) as ds:
        ds = ds.load()
    changed = ds.copy(deep=True)
    changed["O3"] = changed["O3"] * 1.01
    stats = ref.compare(ds, changed)
    assert stats["O3"][0] == pytest.approx(0.01, rel=1e-3)
    assert stats["CO"] == (0.0, 0.0)


def test_sample_case_matches_reference(case, capsys):
    failures = ref.check(case)
    table = capsys.readouterr().out
    assert not failures, "\n".join(failures) + "\n" + table
