# The two commands of README.md: `make run` (whole system on embedded defaults, with demo data)
# and `make test` (the full test suite on whatever DATABASE_URL says; SQLite by default).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
CUSTOMERS ?= 10000

.PHONY: install run migrate seed test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py seed_demo --customers $(CUSTOMERS)

run: seed
	@echo "Demo API keys: var/demo-keys.txt. API docs: http://$(HOST):$(PORT)/api/v1/docs/"
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var/cdp.sqlite3 var/test-cdp.sqlite3
