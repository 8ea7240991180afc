# keyfob — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TESTSTAMP := $(VENV)/.installed-test

.PHONY: run test bench lint venv system-deps clean fuzz soak

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

## Speed benchmarks, ≤ BENCH_BUDGET s (default 600) with BENCH_SECONDS a row (default 5):
## keyfob and privacyIDEA side by side under the same wrk load, store size, imports, the OTP
## core, CLI start-up, RADIUS, directory users → bench/results/latest.md and latest.png.
## The first run sets privacyIDEA up once (bench/.privacyidea, ~2–3 min, cached). Needs wrk.
BENCH_SECONDS ?= 5
BENCH_BUDGET ?= 600
bench: $(TESTSTAMP)
	@command -v wrk >/dev/null || { echo "make bench needs wrk: apt-get install wrk" >&2; exit 1; }
	$(BIN)/python bench/setup_privacyidea.py
	BENCH_SECONDS=$(BENCH_SECONDS) BENCH_BUDGET=$(BENCH_BUDGET) $(BIN)/python bench/bench_compare.py

## Static checks (CI runs them before the tests): ruff lint + format, mypy --strict on src/.
lint: $(TESTSTAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy

# The fuzz extra adds atheris (libFuzzer for Python); schemathesis comes with the test extra.
FUZZSTAMP := $(VENV)/.installed-fuzz
$(FUZZSTAMP): $(TESTSTAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,fuzz]'
	touch $(FUZZSTAMP)

## Coverage-guided fuzzing (atheris), FUZZ_SECONDS per target (default 60), then schemathesis
## against the HTTP API on SQLite and PostgreSQL with FUZZ_API_EXAMPLES (default 50) per
## operation and mode. Crashes land in fuzz/crashes/; figures in fuzz/last-run.md.
FUZZ_SECONDS ?= 60
FUZZ_API_EXAMPLES ?= 50
fuzz: $(FUZZSTAMP)
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/python fuzz/all.py
	KEYFOB_API_FUZZ_EXAMPLES=$(FUZZ_API_EXAMPLES) $(BIN)/python -m pytest -q tests/hardening/test_api_fuzz.py

## Soak: mixed load for SOAK_SECONDS (default 600) against 2 `keyfob serve` processes on one
## PostgreSQL (KEYFOB_TEST_POSTGRES_URL), then every invariant; figures in bench/results/soak.md.
SOAK_SECONDS ?= 600
soak: $(TESTSTAMP)
	SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts
