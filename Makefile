# Two commands matter: `make demo` (the local demo) and `make test` (the suite).
# Both create .venv and install everything from the project's own files first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint typecheck serve bench layer check-deploy clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e .[dev]
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/ci-callback demo

# Lint, types, then the suite; any failure fails the target (and so .ci/run). pytest's
# exit code 5 (no tests collected) is a failure too: a suite that vanished must not pass.
test: lint typecheck
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check

typecheck: $(STAMP)
	$(BIN)/mypy

serve: $(STAMP)
	$(BIN)/ci-callback serve --local

bench: $(STAMP)
	$(BIN)/python bench/run.py

layer: $(STAMP)
	$(BIN)/python layers/build.py

check-deploy: $(STAMP)
	$(BIN)/ci-callback check-deploy

clean:
	rm -rf $(VENV) layers/build bench/out .pytest_cache .hypothesis .mypy_cache .ruff_cache
