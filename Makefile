# The README's two commands: `make demo` (paper daemon, offline) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= examples/paper.toml

.PHONY: demo test test-fast lint docs bench bench-backtest bench-scale setup clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "hedgebot needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres]'
	touch $@

setup: $(BIN)/.installed

## demo: run the paper daemon on SQLite with simulated prices (Ctrl-C stops it)
demo: setup
	$(BIN)/hedgebot run --config $(CONFIG)

## test: the whole test suite
test: setup
	$(BIN)/python -m pytest -q

## test-fast: the suite without the slow tests (those that start hedgebot as a subprocess)
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

## lint: ruff and mypy --strict
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## docs: build the documentation site (docs/, mkdocs.yml) in strict mode, into a temporary
## folder: a broken link or anchor fails it
docs: setup
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && $(BIN)/mkdocs build --strict --quiet --site-dir "$$tmp"

## bench: the quick benchmarks (a few minutes); bench-scale runs SCALE_SECONDS (default 300)
bench: setup
	$(BIN)/python bench/bench_cycle.py
	$(BIN)/python bench/bench_ccxt.py
	$(BIN)/python bench/bench_backtest.py
	$(BIN)/python bench/bench_storage.py
	$(BIN)/python bench/bench_reads.py

bench-backtest: setup
	$(BIN)/python bench/bench_backtest.py

SCALE_SECONDS ?= 300
bench-scale: setup
	$(BIN)/python bench/bench_scale.py --duration $(SCALE_SECONDS)

clean:
	rm -rf $(VENV) *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
