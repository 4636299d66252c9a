# SigmaSight: `make run` serves the demo on SQLite, `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
TEST_SETTINGS := DJANGO_SETTINGS_MODULE=sigmasight.settings.test

.PHONY: run test lint migrate bench fuzz load worker beat clean browser

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "SigmaSight needs Python 3.11 or newer (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@ $(VENV)/.runtime

# Development server with the embedded defaults: SQLite, eager Celery, DEBUG on. The demo is
# seeded when no demo user exists yet; seed_demo prints the logins and the links either way.
run: $(VENV)/.runtime
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py migrate --noinput
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py seed_demo --if-empty --url http://$(HOST):$(PORT)
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py runserver $(HOST):$(PORT)

migrate: $(VENV)/.runtime
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py migrate --noinput

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: lint
	$(TEST_SETTINGS) $(BIN)/python manage.py check
	$(TEST_SETTINGS) $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python -m pytest

bench: $(VENV)/.dev
	$(BIN)/python -m bench

# The API fuzz test (every schemathesis check, every phase) with many more random examples per
# operation than `make test` runs; FUZZ_EXAMPLES sets how many, FUZZ_SEED makes a run repeatable.
FUZZ_EXAMPLES ?= 100
fuzz: $(VENV)/.dev
	SIGMASIGHT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) SIGMASIGHT_FUZZ_SEED=$(FUZZ_SEED) \
		$(BIN)/python -m pytest -m fuzz

# Latency under 20 and 100 concurrent users against gunicorn on the demo, idle and during the
# daily batch, on a fresh PostgreSQL database (and SQLite): p50/p95/p99 and errors.
# Debian's chromium and chromedriver for the workbench's browser tests (modeling/tests/web).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
		echo "chromium and chromedriver are installed"; \
	else \
		apt-get install -y --no-install-recommends chromium chromium-driver \
		|| (apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver); \
	fi

load: $(VENV)/.dev
	$(BIN)/python -m bench.load

worker: $(VENV)/.runtime
	$(BIN)/celery -A sigmasight worker --loglevel=INFO

beat: $(VENV)/.runtime
	$(BIN)/celery -A sigmasight beat --loglevel=INFO

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache
