# Two commands set everything up on a fresh machine: `make test` and `make run`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install test run lint typecheck bench clean screenshot

$(BIN)/triage: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/triage

test: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -n 2 -q

run: install
	$(BIN)/triage init
	$(BIN)/triage run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/quiet_sync.py
	$(BIN)/python bench/digest.py
	$(BIN)/python bench/daemon.py
	$(BIN)/python bench/replicas.py
	$(BIN)/python bench/llm_cost.py
	$(BIN)/python bench/themes.py
	$(BIN)/python bench/duplicates.py
	$(BIN)/python bench/scale.py --items 5000
	$(BIN)/python bench/local_quality.py --seeds 1

# The README's picture of an HTML digest made from the test fakes (needs Chromium).
screenshot: install
	$(BIN)/python bench/screenshot.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
