# The two commands of the README: `make demo` (the main job on the embedded default) and
# `make test` (lint, types and the whole test suite). Each installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := test,gpu,examples,bench,instruments-any

.PHONY: demo test test-fast lint stack bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
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

test-fast: lint
	$(BIN)/python -m pytest -m "not e2e"

test: lint stack
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
