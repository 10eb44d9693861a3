# The README's two commands: `make demo` (the main job on the local stack) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PACKAGES := models topics workers consumers mail store stack cli demo admin settings.py bootstrap.py program_file.py web_access.py client_options.py

.PHONY: install demo test lint typecheck unit integration stack-up stack-down stack-status schemas clean

# The virtualenv is rebuilt whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install stack-up
	$(BIN)/loyalty demo

test: install lint typecheck stack-up
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy $(PACKAGES)

unit: install
	$(BIN)/pytest tests/unit

integration: install stack-up
	$(BIN)/pytest tests/integration

schemas: install
	$(BIN)/loyalty schemas export

stack-up: install
	$(BIN)/loyalty stack up

stack-down:
	@if [ -x $(BIN)/loyalty ]; then $(BIN)/loyalty stack down; fi

stack-status: install
	$(BIN)/loyalty stack status

clean: stack-down
	rm -rf $(VENV) .stack .pytest_cache .mypy_cache .ruff_cache .hypothesis
