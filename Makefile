# Two commands matter: `make demo` (the local demo) and `make test` (the suite).
# Both create .venv and install everything from the project's own files first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup browser demo test serve bench layer check-deploy clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e .[dev]
	touch $(STAMP)

setup: $(STAMP)

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

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

serve: $(STAMP)
	$(BIN)/ci-callback serve --local

bench: $(STAMP)
	$(BIN)/python bench/run.py

layer: $(STAMP)
	$(BIN)/python layers/build.py

check-deploy: $(STAMP)
	$(BIN)/ci-callback check-deploy

clean:
	rm -rf $(VENV) layers/build bench/out .pytest_cache .hypothesis
