# aqforecast: the two commands of the README, each doing its own set-up on a fresh machine.
#   make demo   set up, generate the sample met, run the whole sample cycle into results/demo
#   make test   set up, then run the test suite (fast tests; `make test-all` adds slow ones)

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
AQF    := $(VENV)/bin/aqforecast
STAMP  := $(VENV)/.installed-stamp
CONFIG ?= config/config.yaml
DEMO   ?= results/demo
LEAD   ?= 360
MET    := data_sample/met/.complete

.PHONY: setup demo test test-all sample-met workflow bench clean regression-reference

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,mpi]"
	touch $(STAMP)

setup: $(STAMP)

# WRF-format met for the sample case (too large to commit: generated, ~0.5 GB, ~20 s)
$(MET): $(STAMP) data_sample/make_sample_met.py $(CONFIG)
	$(PY) data_sample/make_sample_met.py --config $(CONFIG) --out data_sample/met
	touch $(MET)

sample-met: $(MET)

demo: setup sample-met
	$(AQF) validate $(CONFIG)
	$(AQF) grid $(CONFIG) --out $(DEMO)/grid
	$(AQF) forecast $(CONFIG) --lead-hours $(LEAD) --out $(DEMO)/forecast --overwrite
	$(AQF) products $(CONFIG) --run $(DEMO)/forecast --out $(DEMO)/products
	$(AQF) bulletin --forecast $(DEMO)/forecast --products $(DEMO)/products --out $(DEMO)/bulletin
	@echo "--- demo outputs in $(DEMO):"
	@find $(DEMO) -type f ! -path '*/restart/*' | sort | head -80
	@echo "(restart files in $(DEMO)/forecast/restart)"
	@echo "--- the morning page: $(DEMO)/bulletin/index.html"

# the same cycle through the Snakemake DAG (profiles in hpc/)
workflow: setup sample-met
	PATH=$(abspath $(VENV))/bin:$$PATH $(VENV)/bin/snakemake --cores 2 --config results=$(DEMO)/workflow

test: setup
	$(PY) -m pytest -q

test-all: setup
	$(PY) -m pytest -q -m "not gpu"

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
