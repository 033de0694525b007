# Two commands matter: `make demo` (the local demo) and `make test` (the suite).
# Both create .venv and install everything from the project's own files first.
# Deploying: `make token`, fill .env (from .env.example), `make deploy` (STAGE=dev by default).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STAGE  ?= dev

# check-deploy runs the Serverless loader and Tencent's toolkit from a pinned npm tree. Installed
# only where node exists; without it the deploy tests skip and say why.
NODE_DIR   := dev/deploy-check
NODE_STAMP := $(NODE_DIR)/node_modules/.installed
NODE_DEPS  := $(if $(shell command -v node 2>/dev/null),$(if $(shell command -v npm 2>/dev/null),$(NODE_STAMP)))

.PHONY: setup demo test lint typecheck serve bench layer check-deploy deploy token connect doctor browser clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e .[dev]
	touch $(STAMP)

$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	npm ci --prefix $(NODE_DIR) --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

setup: $(STAMP) $(NODE_DEPS)

demo: $(STAMP)
	$(BIN)/ci-callback demo

# The HTML report test drives a real headless Chromium (Debian's package). Installed here
# where apt-get works and it is missing; if that fails the test skips, saying why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
	    echo "make: installing chromium (Debian package) for the HTML report test"; \
	    { $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 || \
	      { $$SUDO apt-get update -qq >/dev/null 2>&1 && \
	        $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; }; } || \
	    echo "make: could not install chromium; the HTML report browser test will be skipped"; \
	  else echo "make: no chromium and no apt-get; the HTML report browser test will be skipped"; fi; }

# Lint, types, then the suite; any failure fails the target (and so .ci/run). pytest's
# exit code 5 (no tests collected) is a failure too: a suite that vanished must not pass.
test: lint typecheck browser $(NODE_DEPS)
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

# Prints the resolved, redacted function config and every problem found.
check-deploy: $(STAMP) $(NODE_DEPS)
	$(BIN)/ci-callback check-deploy --root $(CURDIR) --stage $(STAGE)

# One command, in this order: refuse (one line) when a setting would deploy empty, check, require
# the scf CLI, build and deploy the layer, deploy the function, remember what was deployed.
# `scf deploy` in the root deploys that one instance, not layers/ too: a deployable serverless.yml
# in the cwd wins (@serverless/components src/cli/utils.js runningTemplate).
deploy: $(STAMP) $(NODE_DEPS)
	@$(BIN)/ci-callback check-deploy preflight --root $(CURDIR) --stage $(STAGE)
	@command -v scf >/dev/null 2>&1 || { echo "make deploy: refusing: no scf command; npm i -g serverless-cloud-framework (>= 1.2.0)"; exit 1; }
	$(BIN)/python layers/build.py
	cd layers && scf deploy --stage $(STAGE)
	scf deploy --stage $(STAGE)
	@$(BIN)/ci-callback check-deploy record --root $(CURDIR) --stage $(STAGE)
	@echo "make deploy: done; the Function URL is in the output above (also: scf info --stage $(STAGE))"

# A fresh random callback token, for CI_CALLBACK_TOKENS in .env. 16 bytes (22 characters, 128
# bits): the Function URL with ?token= must fit CI's 100-character NotifyConfig Url.
token:
	@$(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(16))'

# Point the sweep spec's queues and workflows at the Function URL: a dry run; APPLY=1 writes.
# URL=… overrides the one recorded for the stage. Then `make doctor` checks the whole wiring.
connect: $(STAMP)
	$(BIN)/ci-callback connect --env-file .env --stage $(STAGE) $(if $(URL),--url '$(URL)') $(if $(APPLY),--apply)

doctor: $(STAMP)
	$(BIN)/ci-callback doctor --env-file .env --stage $(STAGE) $(if $(URL),--url '$(URL)')

clean:
	rm -rf $(VENV) layers/build bench/out .pytest_cache .hypothesis .mypy_cache .ruff_cache
