# Two entry points, each creating or refreshing .venv itself:
#   make demo   runs the main job: `reflow run examples/standup.py:standup`, then
#               `reflow runs show` for that run
#   make test   runs the whole suite: ruff, mypy --strict, pytest
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_RUN := $(VENV)/demo-run-id

.PHONY: demo test bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/python -m pip install -q -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/python -c 'import reflow, reflow.cli, pytest, mypy'
	test -x $(BIN)/reflow
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/reflow run examples/standup.py:standup --id-file $(DEMO_RUN)
	$(BIN)/reflow runs show "$$(cat $(DEMO_RUN))"

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict src
	$(BIN)/pytest

bench:
	bench/run
