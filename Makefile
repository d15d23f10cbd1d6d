# dualsweep — `make help` lists the targets.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
GRID ?= smoke

.PHONY: help install system-deps run test test-fast lint bench clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python  ## create .venv; CPU torch unless a GPU is present (a CUDA torch already installed is kept)
	@if ! $(BIN)/python -c "import torch" 2>/dev/null; then \
	  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	    $(BIN)/pip install -q torch; \
	  else \
	    $(BIN)/pip install -q torch==2.13.0 ; \
	  fi; \
	fi
	$(BIN)/pip install -q -e '.[test]'

system-deps:  ## Debian packages the browser and PostgreSQL tests use (chromium, postgresql); as root, idempotent, never fatal
	-@bash .ci/install-chromium.sh || echo "system-deps: chromium unavailable; the browser tests will skip and say why"
	-@bash .ci/install-postgres.sh || echo "system-deps: postgresql unavailable; the PostgreSQL test will skip and say why"

run: install  ## install, then run the default sweep on the embedded default (local Ray, MLflow on ./mlruns.db)
	$(BIN)/python -m sweep +grid=$(GRID)

test: install system-deps  ## install, then run every test (slow integration tests included)
	$(BIN)/python -m pytest -q

test-fast: install  ## the fast tier only
	$(BIN)/python -m pytest -q -m "not slow"

lint:  ## ruff lint + format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install  ## run every benchmark (figures go in BENCHMARKS.md)
	$(BIN)/python -m bench.solvers && $(BIN)/python -m bench.training && $(BIN)/python -m bench.sweep_overhead && $(BIN)/python -m bench.recording

clean:  ## remove local stores and caches (keeps .venv)
	rm -rf mlruns.db mlartifacts outputs multirun report .pytest_cache
