# Two entry points: `make demo` runs the main job, `make test` runs the test suite (`make lint` checks layers and style).
# Both create .venv and install the lab into it on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench notebooks clean

$(BIN)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/gan-lab quickstart

test: $(BIN)/.installed
	$(BIN)/python -m pytest

# Layers (import-linter contracts in setup.cfg), lint and formatting (ruff, configured in pyproject.toml).
lint: $(BIN)/.installed
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(BIN)/.installed
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

notebooks: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e ".[dev,notebooks]"
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
