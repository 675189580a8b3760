# aqforecast: the two commands of the README, each doing its own set-up on a fresh machine.
#   make demo   set up, generate the sample met and observations, run the daily cycle through
#               Snakemake (config/workflow.yaml: two consecutive cycles, the second with the 15-day
#               lead, every stage) into results/demo/cycles/<YYYYMMDDHH>/
#   make test   set up, then run the test suite (fast tests; `make test-all` adds slow ones) on
#               TEST_WORKERS processes (pytest-xdist, a test file per process: its fixtures and
#               numba compilations stay together; 0 runs them in this process)

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
AQF    := $(VENV)/bin/aqforecast
STAMP  := $(VENV)/.installed-stamp
CONFIG ?= config/config.yaml
DEMO   ?= results/demo
LEAD   ?= 360
# met for two daily cycles, the second 15 days long (start .. start + 24 h + 360 h + 2 h)
MET_HOURS ?= 386
MET    := data_sample/met/.complete-$(MET_HOURS)
OBS    := data_sample/observations/.complete
TEST_WORKERS ?= 2
XDIST  := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)
SNAKE  := PATH=$(abspath $(VENV))/bin:$$PATH $(VENV)/bin/snakemake

.PHONY: setup demo demo-direct test test-all sample-met sample-obs workflow bench clean \
        regression-reference

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,mpi]"
	touch $(STAMP)

setup: $(STAMP)

# WRF-format met for the sample case (too large to commit: generated, ~0.5 GB, ~20 s)
$(MET): $(STAMP) data_sample/make_sample_met.py $(CONFIG)
	$(PY) data_sample/make_sample_met.py --config $(CONFIG) --out data_sample/met \
		--hours $(MET_HOURS)
	touch $(MET)

sample-met: $(MET)

# synthetic station observations (an OSSE truth run with a perturbed inventory, ~2 min)
$(OBS): $(MET) data_sample/make_sample_obs.py
	$(PY) data_sample/make_sample_obs.py --config $(CONFIG) --hours 48 \
		--out data_sample/observations
	touch $(OBS)

sample-obs: $(OBS)

# the daily cycle through the Snakemake DAG (options: config/workflow.yaml; profiles in hpc/)
demo: setup sample-met sample-obs
	$(SNAKE) --cores 2 --configfile config/workflow.yaml --rerun-incomplete \
		--config results=$(DEMO)/cycles
	@$(PY) workflow/scripts/where.py $(DEMO)/cycles

workflow: demo

# one cycle without Snakemake: the stages called one after another
demo-direct: setup sample-met
	$(AQF) validate $(CONFIG)
	$(AQF) grid $(CONFIG) --out $(DEMO)/direct/grid
	$(AQF) forecast $(CONFIG) --lead-hours $(LEAD) --out $(DEMO)/direct/forecast --overwrite
	$(AQF) products $(CONFIG) --run $(DEMO)/direct/forecast --out $(DEMO)/direct/products
	$(AQF) bulletin --forecast $(DEMO)/direct/forecast --products $(DEMO)/direct/products \
		--out $(DEMO)/direct/bulletin

test: setup
	$(PY) -m pytest -q $(XDIST)

test-all: setup
	$(PY) -m pytest -q $(XDIST) -m "not gpu"

bench: setup sample-met
	$(PY) benchmarks/transport.py --small
	$(PY) benchmarks/chemistry.py
	$(PY) benchmarks/forecast.py --hours 3
	$(PY) benchmarks/scaling.py --ranks 1 2 --cases sample

# rewrite tests/regression/reference_*.nc + tolerances.json (after an INTENDED change of results;
# ~3 min: the case and two round-off-perturbed runs that set the tolerances)
regression-reference: setup
	$(PY) tests/regression/make_reference.py

clean:
	rm -rf $(DEMO) .pytest_cache
