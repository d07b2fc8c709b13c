# Two commands for a fresh machine: `make demo` and `make test`.
# Both create .venv when missing, install torch==2.13.0 (the CPU build on this disk; an open
# range would pull a multi-GB CUDA build) and then the package. A stamp file keyed on
# pyproject.toml makes a second run reinstall nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
TORCH_PIN := torch==2.13.0
EXTRAS := dev,bm3d,exifread
STAMP := $(VENV)/.rawadapt-installed
export PYTHONUNBUFFERED := 1

.PHONY: demo test lint install browser bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install $(TORCH_PIN)
	$(PIP) install -e ".[$(EXTRAS)]"
	@touch $(STAMP)

install: $(STAMP)

# The HTML report is checked in a real headless Chromium; install Debian's when missing.
# Never fatal: the browser tests skip with the reason where it cannot be installed.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  ( (command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	     (apt-get install -y -q chromium >/dev/null 2>&1 || \
	      (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1)) ) || \
	    echo "note: chromium not installed; browser tests will be skipped" )

test: $(STAMP) browser
	$(PY) -m pytest -q -n 2 --timeout 600

# Style, types and the layer contract (docs/architecture.md); CI runs it before the tests.
lint: $(STAMP)
	$(VENV)/bin/ruff check rawadapt tests bench
	$(VENV)/bin/ruff format --check rawadapt tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

demo: $(STAMP)
	$(VENV)/bin/rawadapt demo

bench: $(STAMP)
	$(VENV)/bin/rawadapt bench crossval --data synth --out runs/bench --quick

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
