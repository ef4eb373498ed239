# `make demo` and `make test` work from a fresh clone: each creates .venv if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest pytest-slow clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/harmonia demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# the cases marked slow (minutes: API fuzzing, kill -9 and ten-minute runs) run in CI
# (.ci/run) and with `make pytest-slow`, not in `make test`
pytest: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

pytest-slow: $(STAMP)
	$(BIN)/pytest -q -m slow

test: lint typecheck pytest

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
