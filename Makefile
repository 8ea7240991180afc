# keyfob — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TESTSTAMP := $(VENV)/.installed-test

.PHONY: run test bench lint venv system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

# The test extras add pyscard (compiled against libpcsclite), Playwright, pyotp, …
$(TESTSTAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(TESTSTAMP)

venv: $(STAMP)

## Start the MFA server on SQLite (./keyfob.db); the first start prints the admin password.
run: $(STAMP)
	$(BIN)/keyfob serve --db sqlite:///keyfob.db

## Install the system tools the tests use (as root), then run the whole suite.
test: system-deps $(TESTSTAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# System Python on purpose: it runs before the virtualenv, because pyscard builds against
# libpcsclite and the tests need Debian's oathtool, pcscd, vpcd and chromium.
system-deps:
	@$(PYTHON) scripts/system_deps.py

## Speed benchmarks; results land in bench/results/.
bench: $(TESTSTAMP)
	$(BIN)/python bench/bench_cli.py
	$(BIN)/python bench/bench_otp.py
	$(BIN)/python bench/bench_server.py

lint: $(TESTSTAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts
