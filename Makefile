# The README's two commands: `make demo` (paper daemon, offline) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= examples/paper.toml

.PHONY: demo test test-fast lint docs bench bench-backtest bench-scale bench-freqtrade setup install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "hedgebot needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres]'
	touch $@

setup: $(BIN)/.installed

## install: the daemon alone, for a service (README "Deploy"): a virtualenv at PREFIX with a
## non-editable install of this checkout and the Postgres driver; no dev tools, nothing of
## the checkout needed afterwards (the migrations go to PREFIX/share/hedgebot/migrations).
## Built from a copy of what the package is made of, so a `sudo make install` leaves no
## root-owned build files in the checkout; umask 022 so the service user can read it.
## Run it again to upgrade.
PREFIX ?= /opt/hedgebot
install:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "hedgebot needs Python 3.11 or newer"'
	umask 022 && $(PYTHON) -m venv $(PREFIX)
	umask 022 && src=$$(mktemp -d) && trap 'rm -rf "$$src"' EXIT && \
	  cp -R pyproject.toml README.md bot migrations "$$src" && \
	  $(PREFIX)/bin/python -m pip install --quiet --disable-pip-version-check "$$src[postgres]"
	$(PREFIX)/bin/hedgebot --help > /dev/null

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
	$(BIN)/python bench/bench_venues.py
	$(BIN)/python bench/bench_backtest.py
	$(BIN)/python bench/bench_cli.py
	$(BIN)/python bench/bench_storage.py
	$(BIN)/python bench/bench_reads.py

bench-backtest: setup
	$(BIN)/python bench/bench_backtest.py

## bench-freqtrade: freqtrade on the Bybit emulator, beside bench_venues' Bybit figures (the
## first run installs freqtrade into bench/.venvs/freqtrade from the package index)
bench-freqtrade: setup
	$(BIN)/python bench/bench_freqtrade.py

SCALE_SECONDS ?= 300
bench-scale: setup
	$(BIN)/python bench/bench_scale.py --duration $(SCALE_SECONDS)

clean:
	rm -rf $(VENV) *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
