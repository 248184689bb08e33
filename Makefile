# Lucky Gas migration: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
SCALE  ?= full
SEED   ?= 20250521
DATA   ?= data/sample-$(SCALE)

.PHONY: setup demo test lint sample bench db-start db-stop lock clean

$(BIN)/luckygas: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	@test -f profiles.yml || cp profiles.yml.example profiles.yml
	@touch $@

setup: $(BIN)/luckygas ## virtualenv + pinned install + profiles.yml

demo: setup ## embedded PostgreSQL, full-scale sample, raw load, dbt build, counts against expected.json
	$(BIN)/luckygas db start
	$(BIN)/luckygas sample --out $(DATA) --scale $(SCALE) --seed $(SEED)
	$(BIN)/luckygas load $(DATA)
	eval "$$($(BIN)/luckygas db env)" && $(BIN)/dbt build
	$(BIN)/luckygas verify $(DATA)

test: setup lint ## every test (pytest, small scale, throwaway PostgreSQL)
	$(BIN)/pytest

lint: setup ## ruff on the Python, sqlfluff on the dbt SQL
	$(BIN)/ruff check loaders bench
	$(BIN)/ruff format --check loaders bench
	$(BIN)/sqlfluff lint models macros tests analyses

sample: setup
	$(BIN)/luckygas sample --out $(DATA) --scale $(SCALE) --seed $(SEED)

bench: setup ## benchmarks (full scale; prints figures, asserts nothing)
	$(BIN)/python bench/sample_generation.py
	$(BIN)/python bench/raw_load.py
	$(BIN)/python bench/dbt_build.py
	$(BIN)/python bench/rollback.py

db-start: setup
	$(BIN)/luckygas db start

db-stop: setup
	$(BIN)/luckygas db stop

lock: ## re-pin constraints.txt from a fresh resolve of pyproject.toml
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install --quiet -e '.[dev]'
	( head -2 constraints.txt; .lockvenv/bin/pip freeze --exclude-editable ) > constraints.new
	mv constraints.new constraints.txt && rm -rf .lockvenv

clean:
	rm -rf data target logs .pytest_cache
