# vidgate — two commands on a fresh machine: `make dev`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=
PYTEST_ARGS ?=
# The player's hls.js and the admin uploader (Uppy): pinned by app/web/player/package-lock.json,
# installed with `npm ci`; hls.js's dist build is copied and the uploader (src/uploader.js with
# @uppy/core and @uppy/aws-s3) bundled by esbuild into app/web/static/vendor/ (git-ignored),
# served from /static.
PLAYER     := app/web/player
VENDOR     := app/web/static/vendor
HLS_DIST   := $(PLAYER)/node_modules/hls.js/dist
PLAYER_JS  := $(VENDOR)/hls.min.js

.PHONY: dev test check lint bench package clean player

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

$(PLAYER_JS): $(PLAYER)/package.json $(PLAYER)/package-lock.json $(PLAYER)/src/uploader.js
	@command -v npm >/dev/null 2>&1 || { echo "npm is needed for the player's hls.js (Debian: apt-get install npm)" >&2; exit 1; }
	cd $(PLAYER) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)
	cp $(HLS_DIST)/hls.worker.js $(VENDOR)/hls.worker.js
	cp $(PLAYER)/node_modules/hls.js/LICENSE $(VENDOR)/hls.js-LICENSE.txt
	cd $(PLAYER) && ./node_modules/.bin/esbuild src/uploader.js --bundle --minify --format=iife \
		--target=es2020 --legal-comments=linked --log-level=warning --outfile=../static/vendor/uploader.js
	cp $(HLS_DIST)/hls.min.js $(PLAYER_JS)

player: $(PLAYER_JS)  ## npm ci; hls.js and the bundled uploader into app/web/static/vendor/

dev: $(STAMP) $(PLAYER_JS)  ## run the whole product on the embedded local stack
	$(BIN)/vidgate dev $(ARGS)

test: $(STAMP) $(PLAYER_JS)  ## the whole suite: unit, integration (emulators), e2e (real browser)
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

package: $(STAMP) $(PLAYER_JS)  ## Lambda zips + deploy templates (arm64, x86_64) under build/lambda/
	$(BIN)/python infra/package.py $(ARGS)

clean:
	rm -rf $(VENV) .vidgate .cache build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
	rm -rf $(PLAYER)/node_modules $(VENDOR)
