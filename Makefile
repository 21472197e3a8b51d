# The two commands: `make run` and `make test`. See README.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export FLASK_APP := billing

.PHONY: run test install system-test-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

## Create the venv, migrate, seed a demo clinic on first run, serve on http://$(HOST):$(PORT)
run: $(VENV)/.installed
	$(BIN)/flask db upgrade
	$(BIN)/flask billing seed-demo --if-empty
	@echo
	@echo "Serving on http://$(HOST):$(PORT)/ - sign in with a demo login printed above (Ctrl+C stops)."
	$(BIN)/flask run --host $(HOST) --port $(PORT)

## Install what the tests need (Chromium and poppler from Debian when missing) and run the suite
test: $(VENV)/.installed-dev system-test-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

system-test-deps:
	@if ! command -v chromium >/dev/null || ! command -v pdftotext >/dev/null; then \
		echo "Installing chromium and poppler-utils from Debian..."; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium poppler-utils >/dev/null; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
