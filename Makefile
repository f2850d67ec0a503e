# One entry point for humans and CI.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench mutate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=25.1'

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# Development tools are the PEP 735 group `dev` (pip >= 25.1 reads it). It is a group, not an
# extra, so users of the package never see it.
$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=25.1'  # a .venv made before groups
	$(BIN)/python -m pip install --quiet --group dev -e .
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/chatcontract validate --simulate

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: $(VENV)/.installed-dev
	@for script in benchmarks/bench_*.py; do \
		echo "== $$script"; $(BIN)/python $$script || exit 1; \
	done

# Mutation testing of the pure decision layers (cosmic-ray; slow, not part of `make test`).
# Each folder's modules are judged by tests/<folder> only; see docs/mutation.md.
MUTATE_FOLDERS ?= wire failures policy
MUTATE_JOBS    ?= 2
mutate: $(VENV)/.installed-dev
	$(BIN)/python scripts/mutate.py --jobs $(MUTATE_JOBS) $(MUTATE_FOLDERS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .mutation
