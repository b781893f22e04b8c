# The two entry points are `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck system-deps bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

system-deps:
	./scripts/install-system-deps.sh

demo: $(STAMP)
	$(BIN)/vidicon demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Most tests wait on real time (cameras, players), so three workers share two
# cores well; the few that measure timing or UDP loss run alone afterwards.
TEST_WORKERS ?= 3

test: system-deps $(STAMP) lint typecheck
	$(BIN)/pytest -q -n $(TEST_WORKERS) -m "not serial" $(PYTEST_ARGS)
	$(BIN)/pytest -q -m serial $(PYTEST_ARGS) || [ $$? -eq 5 ]  # 5: none selected

bench: system-deps $(STAMP)
	$(BIN)/python bench/record.py $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
