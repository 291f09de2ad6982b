# The README's two commands: `make demo` (set up, run the default preset, write its report) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

$(BIN)/spikeloc: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

.PHONY: setup demo test test-slow
setup: $(BIN)/spikeloc

demo: setup
	$(BIN)/spikeloc train --preset default --out runs/default-demo-$$(date +%Y%m%d-%H%M%S)

test: setup
	$(BIN)/ruff check src tests benchmarks experiments
	$(BIN)/pytest -q

test-slow: setup
	$(BIN)/pytest -q -m slow
