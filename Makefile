# qorgau — two commands on a fresh Debian machine with Python 3.11:
#   make run    set everything up and start the platform (SQLite, demo organization) on :8080
#   make test   set everything up and run the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test install browser bench bench-presidio docs clean-var help

help:
	@echo "make run    — set up and start qorgau on http://127.0.0.1:8080 (demo organization)"
	@echo "make test   — set up and run the whole test suite"
	@echo "make bench  — run the benchmarks and print ratios"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "qorgau needs Python >= 3.11"'
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3-venv missing; installing it"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; \
	  $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,spark]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/qorgau init --demo
	$(BIN)/qorgau serve

# Browser tests drive Debian's chromium through Playwright (never a downloaded browser).
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; \
	  else echo "chromium is not installed and we are not root: browser tests will be skipped"; fi; \
	fi

test: $(STAMP) browser
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/audit_append.py
	$(BIN)/python bench/identifiers_validate.py
	$(BIN)/python bench/scan_throughput.py $(if $(wildcard bench/.venv-presidio/bin/python),,--no-presidio)
	$(BIN)/python bench/redact_files.py
	$(BIN)/python bench/datamap_scan.py
	$(BIN)/python bench/vault.py
	$(BIN)/python bench/vault_split.py
	$(BIN)/python bench/consent_check.py
	$(BIN)/python bench/citizen_portal.py
	$(BIN)/python bench/rules.py
	$(BIN)/python bench/leaks.py
	$(BIN)/python bench/labels.py

bench-presidio:  ## the benchmark-only Presidio venv for bench/scan_throughput.py
	$(PYTHON) -m venv bench/.venv-presidio && bench/.venv-presidio/bin/pip install -q -r bench/requirements-presidio.txt

docs: $(STAMP)
	$(BIN)/python docs/gen_cli.py > docs/cli.md
	$(BIN)/python docs/gen_api.py > docs/api.md

clean-var:
	rm -rf var
