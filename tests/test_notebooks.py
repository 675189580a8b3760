"""The notebooks (``notebooks/*.ipynb``): stored without outputs, and executed in order with
nbclient on the small case (their ``parameters`` cell overridden, papermill style), sharing one
tagged 24 h forecast in one work directory: 01 runs it, 02-04 reuse it; 05 reads the committed
result of the last Beijing hindcast (``config/hindcast_beijing/last_run/``, seconds).

The kernel is this interpreter's ipykernel (a kernel spec written to a temporary directory), so
the notebooks import the aqforecast under test whatever kernels the user has installed.
"""

from __future__ import annotations

import time

import nbformat
import pytest
from forecast_case import REPO, small_config

NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
START = "2026-07-20T16"     # local midnight: lead day 1 is one whole local day
LEAD_HOURS = 24
KERNEL = "aqforecast-tests"
TIMINGS: dict[str, float] = {}
#: the parameters a notebook must have (default: CONFIG, WORKDIR, START, LEAD_HOURS); 05 reads
#: the committed result of the last Beijing hindcast run (config/hindcast_beijing/last_run/)
#: and runs nothing, so the small case's CONFIG, START and LEAD_HOURS injected below are unused
PARAMETERS = {"05_hindcast.ipynb": ("RESULTS", "WORKDIR")}


def _parameters_cell(nb) -> int:
    cells = [k for k, c in enumerate(nb.cells)
             if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one code cell tagged 'parameters'"
    return cells[0]


def test_notebooks_are_stored_stripped():
    assert NOTEBOOKS == ["01_quickstart.ipynb", "02_source_apportionment.ipynb",
                         "03_scenarios_and_plan.ipynb", "04_verification_and_inversion.ipynb",
                         "05_hindcast.ipynb"]
    for name in NOTEBOOKS:
        nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [], f"{name}: a code cell has outputs (strip them)"
                assert cell.execution_count is None, f"{name}: execution counts are stored"
                assert "execution" not in cell.metadata, f"{name}: execution timings are stored"
            assert "attachments" not in cell or not cell.attachments, name
        src = nb.cells[_parameters_cell(nb)].source
        for key in PARAMETERS.get(name, ("CONFIG", "WORKDIR", "START", "LEAD_HOURS")):
            assert f"{key} = " in src, f"{name}: the parameters cell lacks {key}"
        assert nb.metadata.get("kernelspec", {}).get("language") == "python"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager

    tmp = tmp_path_factory.mktemp("notebooks")
    case = small_config(tmp / "case", hours=41, tags=True)  # met to 16 UTC + 24 h
    kernels = tmp / "kernels"
    write_kernel_spec(kernels / KERNEL)       # argv: this interpreter -m ipykernel_launcher
    yield case, tmp / "work", KernelSpecManager(kernel_dirs=[str(kernels)])
    if TIMINGS:
        print("\nnotebook execution times: " + ", ".join(
            f"{k} {v:.1f} s" for k, v in TIMINGS.items()) + f"; total {sum(TIMINGS.values()):.1f} s")


@pytest.mark.slow   # ~90-150 s for the four; .ci/run runs them after the default suite
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, workspace, record_property):
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    case, work, ksm = workspace
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    cell = nb.cells[_parameters_cell(nb)]
    cell.source += ("\n# injected by tests/test_notebooks.py\n"
                    f"CONFIG = {str(case)!r}\nWORKDIR = {str(work)!r}\n"
                    f"START = {START!r}\nLEAD_HOURS = {LEAD_HOURS}\n")
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=ksm)
    client = NotebookClient(nb, km=km, timeout=600,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    t0 = time.perf_counter()
    try:
        client.execute()   # a failing cell raises CellExecutionError with its traceback
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    TIMINGS[name] = time.perf_counter() - t0
    record_property("seconds", round(TIMINGS[name], 1))
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    last = next(c for c in reversed(nb.cells) if c.cell_type == "code")
    text = "".join(o.get("text", "") for o in last.outputs if o.output_type == "stream")
    assert "checks passed" in text, text
