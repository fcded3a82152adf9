# vidgate — two commands on a fresh machine: `make dev`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=
PYTEST_ARGS ?=

.PHONY: dev test lint bench package clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

dev: $(STAMP)  ## run the whole product on the embedded local stack
	$(BIN)/vidgate dev $(ARGS)

test: $(STAMP)  ## the whole suite: unit, integration (emulators), e2e (real browser)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check app lambda_handlers tests infra
	$(BIN)/ruff format --check app lambda_handlers infra
	$(BIN)/mypy
	$(BIN)/mypy infra/package.py infra/render.py

bench: $(STAMP)
	$(BIN)/python -m app.local.bench $(ARGS)

package: $(STAMP)  ## Lambda zips + deploy templates (arm64, x86_64) under build/lambda/
	$(BIN)/python infra/package.py $(ARGS)

clean:
	rm -rf $(VENV) .vidgate .cache build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
