# The two set-up commands (`make plan`, `make test`) build .venv from requirements.txt first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STACK ?= dev

.PHONY: plan test lint upstream clean

$(BIN)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

## Offline plan of a stack (default dev): policies and schema checks, no cloud needed.
plan: $(BIN)/.installed
	$(BIN)/python -m stacks plan $(STACK)

## The test suite (what CI runs).
test: $(BIN)/.installed
	$(BIN)/python -m pytest

## Download the pinned upstream chart values, CRDs and schema to ./upstream.
upstream: $(BIN)/.installed
	$(BIN)/python -m stacks upstream --dest upstream

lint: $(BIN)/.installed
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
