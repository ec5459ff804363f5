# The two commands a newcomer needs: `make run` and `make test`. Both install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

# These tests fork the pytest process for each test (the policy patches libraries in-process). Forking a process
# in which earlier tests left threads running (a live server, the drawing queue) can deadlock the child, so they
# run in a pytest process of their own.
FORKED_TESTS := analysis/tests/sandbox/test_policy.py

.PHONY: install run worker test lint format migrations-check bench screenshots

# Re-installs only when requirements.txt changes (the stamp file is newer otherwise).
$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

## The app with everything embedded: SQLite, in-memory channel layer, local files, offline analyst.
run: install
	DEBUG=1 PY=$(PY) bin/run

## One extra run worker (for a `make run` that points at shared services, or to see it alone).
worker: install
	DEBUG=$${DEBUG:-1} $(PY) manage.py run_worker

## The whole suite: lint, migrations in sync, then pytest. All three always run (so one lint error does not
## hide the test results); the target fails if any of them failed, and says which.
test: install
	@failed=""; \
	$(MAKE) --no-print-directory lint || failed="$$failed lint"; \
	$(MAKE) --no-print-directory migrations-check || failed="$$failed migrations-check"; \
	$(PY) -m pytest -q $(PYTEST_ARGS) --ignore=$(FORKED_TESTS) || failed="$$failed pytest"; \
	$(PY) -m pytest -q $(FORKED_TESTS) || failed="$$failed pytest-forked"; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed"; exit 1; fi; \
	echo "make test: lint, migrations-check and pytest passed"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check . || echo "ruff format would reformat the files above (run: make format)"

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

migrations-check: install
	@mkdir -p $${DATA_DIR:-var}  # the history check opens the (SQLite) database
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

## Benchmarks print ratios; they are not timed tests.
bench: install
	@failed=""; for script in bench/*.py; do \
	  echo "== $$script"; PYTHONPATH=. DEBUG=1 $(PY) $$script || failed="$$failed $$script"; \
	done; if [ -n "$$failed" ]; then echo "bench: failed:$$failed"; exit 1; fi

## Screenshots of the key screens (light/dark, desktop/phone) from the browser journey test, into var/screenshots/
## (git-ignored); the README's docs/screenshots/session.png is refreshed too.
screenshots: install
	SCREENSHOTS_DIR=$(CURDIR)/var/screenshots UPDATE_SCREENSHOTS=1 $(PY) -m pytest -q -p no:randomly \
	  codingagent/tests/browser/test_journey.py codingagent/tests/browser/test_flows.py \
	  codingagent/tests/browser/test_live.py
	@ls -1 var/screenshots/*.png
