# dualsweep — `make help` lists the targets.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
GRID ?= smoke
# The versions CI tested (every package but torch, whose CPU/GPU build is chosen below).
CONSTRAINTS := constraints.txt
# Written once the project is installed: run/test reinstall only when it is older than
# pyproject.toml or the constraints (or the venv was made again).
STAMP := $(VENV)/.dualsweep-installed
# torch and its CUDA runtime wheels stay out of the constraints: `make install` picks the build.
UNPINNED := ^(torch|triton|nvidia-[a-z0-9-]+)==

.PHONY: help install system-deps run test test-fast lint bench clean lock upgrade

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(STAMP)  ## create .venv and install the project at the versions in constraints.txt; CPU torch unless a GPU is present (a CUDA torch already installed is kept)

$(STAMP): $(BIN)/python pyproject.toml $(CONSTRAINTS)
	@if ! $(BIN)/python -c "import torch" 2>/dev/null; then \
	  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	    $(BIN)/pip install -q torch; \
	  else \
	    $(BIN)/pip install -q torch==2.13.0 ; \
	  fi; \
	fi
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e '.[test]'
	@touch $@

lock:  ## write constraints.txt from the versions installed in .venv (after `make upgrade` and a green `make test`)
	@{ echo "# The versions CI tested: \`make install\` installs with \`pip install -c $(CONSTRAINTS)\`."; \
	  echo "# Refresh: make upgrade && make test && make lock (README, Installing). torch is not"; \
	  echo "# pinned here: the Makefile picks its CPU or CUDA build."; \
	  $(BIN)/pip freeze --exclude-editable | grep -E '^[A-Za-z0-9_.-]+==' | grep -Ev '$(UNPINNED)'; } > $(CONSTRAINTS).tmp
	@mv $(CONSTRAINTS).tmp $(CONSTRAINTS)
	@echo "lock: $(CONSTRAINTS) has $$(grep -c '==' $(CONSTRAINTS)) pins from $(BIN)/pip freeze"

upgrade: $(BIN)/python  ## install the newest versions pyproject.toml allows, ignoring constraints.txt and keeping torch's build (then make test, make lock)
	@$(BIN)/python -c "import torch; print('torch==' + torch.__version__)" > $(VENV)/torch-hold.txt
	$(BIN)/pip install -q --upgrade --upgrade-strategy eager -c $(VENV)/torch-hold.txt -e '.[test]'
	@touch $(STAMP)

system-deps:  ## Debian packages the browser and PostgreSQL tests use (chromium, postgresql); as root, idempotent, never fatal
	-@bash .ci/install-chromium.sh || echo "system-deps: chromium unavailable; the browser tests will skip and say why"
	-@bash .ci/install-postgres.sh || echo "system-deps: postgresql unavailable; the PostgreSQL test will skip and say why"

run: $(STAMP)  ## install, then run the default sweep on the embedded default (local Ray, MLflow on ./mlruns.db)
	$(BIN)/python -m sweep +grid=$(GRID)

test: $(STAMP) system-deps  ## install, then run every test (slow integration tests included)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)  ## the fast tier only
	$(BIN)/python -m pytest -q -m "not slow"

lint:  ## ruff lint + format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)  ## run every benchmark (figures go in BENCHMARKS.md)
	$(BIN)/python -m bench.solvers && $(BIN)/python -m bench.training && $(BIN)/python -m bench.sweep_overhead && $(BIN)/python -m bench.recording

clean:  ## remove local stores and caches (keeps .venv)
	rm -rf mlruns.db mlruns.db-wal mlruns.db-shm mlartifacts outputs multirun report .pytest_cache
