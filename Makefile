# Two entry points, each creating or refreshing .venv itself:
#   make demo   runs the main job
#   make test   runs the whole suite: ruff, mypy --strict, pytest
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/python -m pip install -q -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/python -c 'import reflow, pytest, mypy'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/retry_demo.py
	$(BIN)/python examples/task_demo.py
	$(BIN)/python examples/flow_demo.py

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict src
	$(BIN)/pytest

bench:
	bench/run
