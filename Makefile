# vidgate — two commands on a fresh machine: `make dev`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=
PYTEST_ARGS ?=

.PHONY: dev test check lint bench package clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

dev: $(STAMP)  ## run the whole product on the embedded local stack
	$(BIN)/vidgate dev $(ARGS)

test: $(STAMP)  ## the whole suite: unit, integration (emulators), e2e (real browser)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: lint $(STAMP)  ## the quick gate: lint, types, import contracts, unit tests (CI runs it first)
	$(BIN)/python -m pytest tests/unit -q -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff, ruff format, mypy (strict on app, lambda_handlers, infra), import contracts, deptry
	$(BIN)/ruff check app lambda_handlers tests infra
	$(BIN)/ruff format --check app lambda_handlers infra tests
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/deptry .

bench: $(STAMP)
	$(BIN)/python -m app.local.bench $(ARGS)

package: $(STAMP)  ## Lambda zips + deploy templates (arm64, x86_64) under build/lambda/
	$(BIN)/python infra/package.py $(ARGS)

clean:
	rm -rf $(VENV) .vidgate .cache build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
