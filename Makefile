# Two commands matter: `make run` and `make test`. Everything else here serves them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV := .venv
BIN := $(VENV)/bin
# Django 6 needs Python 3.12+: take the first interpreter on this machine that is new enough.
PYTHON ?= $(shell for p in python3.13 python3.12 python3 $$HOME/.pyenv/versions/3.13*/bin/python3 $$HOME/.pyenv/versions/3.12*/bin/python3 /usr/local/bin/python3.1[2-9] /usr/bin/python3.1[2-9]; do \
	  $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { echo $$p; break; }; done)
STAMP := $(VENV)/.installed
# Dummy production values, only to let `check --deploy` load the production settings.
DEPLOY_CHECK_ENV := DJANGO_SETTINGS_MODULE=config.settings.production \
	DJANGO_SECRET_KEY=deploy-check-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP \
	DJANGO_ALLOWED_HOSTS=fieldbridge.example.com DATABASE_URL=postgres://u:p@localhost:5432/db \
	REDIS_URL=redis://localhost:6379/0 FIELD_ENCRYPTION_KEYS=tUJvDsoZ2Xqf2iC7EO3P6A2yKXJ5WrLpbr3KytmRZ-E=

.PHONY: help install run test lint format migrate lock clean

help:
	@echo "make run    install, migrate, seed the demo, serve on http://127.0.0.1:8000 with a worker and beat"
	@echo "make test   lint, format check, migrations check, deploy check, pytest"

$(STAMP): pyproject.toml requirements/constraints.txt
	@test -n "$(PYTHON)" || { echo "Python 3.12 or newer is required (Django 6); none was found." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

run: migrate
	$(BIN)/python manage.py sandbox_seed --records 200 --db var/sandbox.sqlite3 --reset
	$(BIN)/python manage.py seed_demo --sandbox-url http://127.0.0.1:8765
	@echo "Serving on http://127.0.0.1:8000 (web, Celery worker, beat and the provider sandbox on :8765; Ctrl-C stops them all)"
	$(BIN)/honcho -f Procfile.dev start

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/python manage.py makemigrations --check --dry-run --settings=config.settings.test
	env $(DEPLOY_CHECK_ENV) $(BIN)/python manage.py check --deploy --fail-level WARNING
	$(BIN)/pytest

# Re-pin every dependency after changing pyproject.toml.
lock: install
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > requirements/constraints.txt

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache
