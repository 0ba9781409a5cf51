# The README's commands. `make lab` for the demo, `make test` for the test suite.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
INSTALLED = $(VENV)/.installed
export FLASK_APP ?= my_app
# Jupyter refuses to run as root unless told (containers and fresh VMs often are root).
ROOT_ARGS = $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: lab test test-lowest lint install demo-db bench clean

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
## Then the same for the lowest supported versions (test-lowest).
test: lint $(INSTALLED)
	$(BIN)/python -m pytest -m serial $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m "not serial" -n $(TEST_WORKERS) $(PYTEST_ARGS)
	$(MAKE) test-lowest

TEST_WORKERS ?= 2

## The lowest supported versions (constraints-lowest.txt), in a second venv on the lowest
## supported Python: the test apps, then connect, frame, frames, exports and jobs on my_app.
## Flask-SQLAlchemy 3.0 cannot build a DeclarativeBase model class (my_app's, apps.zoo's), so
## those run on 3.1.0, the lowest that can, installed beside the venv and put first on PYTHONPATH.
LOWEST_VENV ?= .venv-lowest
LOWEST_BIN = $(LOWEST_VENV)/bin
LOWEST_INSTALLED = $(LOWEST_VENV)/.installed
LOWEST_PYTHON ?= $(or $(firstword $(wildcard $(HOME)/.pyenv/versions/3.10*/bin/python3.10)),$(shell command -v python3.10),$(PYTHON))
LOWEST_FSA31 = $(abspath $(LOWEST_VENV))/flask-sqlalchemy-3.1
LOWEST_APP_TESTS = tests/test_apps.py tests/test_binds.py tests/test_processed_columns.py tests/test_versions.py
LOWEST_MY_APP_TESTS = tests/test_session.py tests/test_frames.py tests/test_frames_queries.py \
	tests/test_export.py tests/test_export_files.py tests/test_jobs.py tests/test_apps.py::test_zoo_in_a_kernel

$(LOWEST_INSTALLED): pyproject.toml constraints-lowest.txt
	$(LOWEST_PYTHON) -m venv $(LOWEST_VENV)
	$(LOWEST_BIN)/python -m pip install --quiet --upgrade pip
	$(LOWEST_BIN)/python -m pip install --quiet -c constraints-lowest.txt -e '.[postgres,mysql,fast]' \
		ipykernel pytest pytest-timeout pytest-xdist hypothesis jupyter-client psutil
	$(LOWEST_BIN)/python -m pip install --quiet --no-deps --upgrade --target $(LOWEST_FSA31) flask-sqlalchemy==3.1.0
	touch $(LOWEST_INSTALLED)

test-lowest: $(LOWEST_INSTALLED)
	$(LOWEST_BIN)/python -m pytest -m "not serial" -n $(TEST_WORKERS) $(LOWEST_APP_TESTS) $(PYTEST_ARGS)
	PYTHONPATH=$(LOWEST_FSA31) $(LOWEST_BIN)/python -m pytest -m "not serial" -n $(TEST_WORKERS) $(LOWEST_MY_APP_TESTS) $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(LOWEST_VENV) .pytest_cache .hypothesis
