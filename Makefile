# keyfob — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench lint venv system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

## Start the MFA server on SQLite (./keyfob.db); the first start prints the admin's password.
run: $(STAMP)
	$(BIN)/keyfob serve --db sqlite:///keyfob.db

## Install missing system tools the tests use (as root), then run the whole suite.
test: system-deps $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# System Python on purpose: pyscard (a test dependency) compiles against libpcsclite.
system-deps:
	@$(PYTHON) scripts/system_deps.py

## Speed benchmarks; results land in bench/results/.
bench: $(STAMP)
	$(BIN)/python bench/bench_otp.py
	$(BIN)/python bench/bench_server.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts
