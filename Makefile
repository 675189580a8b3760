# aqforecast: the two commands of the README, each doing its own set-up on a fresh machine.
#   make demo   set up, then run the whole sample cycle (config/config.yaml) into results/demo
#   make test   set up, then run the test suite (fast tests; `make test-all` adds slow ones)

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
AQF    := $(VENV)/bin/aqforecast
STAMP  := $(VENV)/.installed-stamp
CONFIG ?= config/config.yaml
DEMO   ?= results/demo

.PHONY: setup demo test test-all test-mpi bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,mpi]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(AQF) validate $(CONFIG)
	$(AQF) grid $(CONFIG) --out $(DEMO)
	@echo "--- demo outputs in $(DEMO):"
	@ls -l $(DEMO)

test: setup
	$(PY) -m pytest -q

test-all: setup
	$(PY) -m pytest -q -m "not gpu"

bench: setup
	$(PY) benchmarks/transport.py --small

clean:
	rm -rf $(DEMO) .pytest_cache
