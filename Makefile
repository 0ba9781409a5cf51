# The README's commands. `make lab` for the demo, `make test` for the test suite.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
INSTALLED = $(VENV)/.installed
export FLASK_APP ?= my_app
# Jupyter refuses to run as root unless told (containers and fresh VMs often are root).
ROOT_ARGS = $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: lab test lint install demo-db bench clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

install: $(INSTALLED)

## Initialise and seed the embedded SQLite demo database (once), then open JupyterLab.
lab: demo-db
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_ARGS) $(LAB_ARGS)

demo-db: $(INSTALLED)
	$(BIN)/flask --app my_app init-db
	$(BIN)/flask --app my_app seed --if-empty --users 5000 --events 200000

## Lint, type-check, then run the whole test suite (SQLite, and the PostgreSQL and MariaDB servers).
## Tests marked `serial` (one restarts the PostgreSQL server; some measure seconds) run first, alone;
## the rest on 2 workers.
test: lint $(INSTALLED)
	$(BIN)/python -m pytest -m serial $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m "not serial" -n $(TEST_WORKERS) $(PYTEST_ARGS)

TEST_WORKERS ?= 2

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
