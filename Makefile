# The README's two commands: `make demo` and `make test`. Each creates .venv and
# installs the project (with its dev tools) on first use, so both work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint install

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	@echo "== first run: creating $(VENV) and installing orchestrator-hub and its dependencies"
	@echo "== (about a minute; pip lists each package as it goes; later runs skip this)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	@echo "== installed: $(BIN)/orchestrator (or \`source $(BIN)/activate\` for plain \`orchestrator\`)"
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/orchestrator demo

# On every core, at most 4 (pytest-xdist): each worker starts its own embedded server.
# A plain `.venv/bin/pytest` runs the same tests one at a time.
test: $(BIN)/.installed
	$(BIN)/pytest -n auto --maxprocesses 4

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
