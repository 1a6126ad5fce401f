# The two commands of the README: `make demo` (the main job on the embedded default) and
# `make test` (lint, types and the whole test suite). Each installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := test,gpu,examples,bench,instruments-any

.PHONY: demo test test-fast lint stack bench clean

# First the install a user runs (the pip that comes with Python, no constraints file), so a
# dependency conflict fails here as it fails for them; then the pinned development set.
$(STAMP): pyproject.toml setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e .
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	touch $@

demo: $(STAMP)
	$(BIN)/otel-mlmon demo

lint: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/mypy

# The bundled stack's programs: promtool/amtool from Debian, and the collector, Jaeger and
# VictoriaLogs built from Go modules into a cache outside the repo (docs/stack.md).
stack:
	bash collector/install-deps.sh
	bash collector/build.sh

# Without the end-to-end stack and the wheel installed from the package index (minutes each).
test-fast: lint
	$(BIN)/python -m pytest -m "not e2e and not install"

test: lint stack
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
