# keyfob — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TESTSTAMP := $(VENV)/.installed-test

.PHONY: run test bench profile lint venv system-deps clean fuzz soak lock audit

# Every distribution comes from a lock file, pinned by hash (`make lock` regenerates both from
# pyproject.toml): requirements/run.lock for the server and CLI, requirements/test.lock adds the
# test tools and pyscard (built against libpcsclite). keyfob itself is then installed without
# dependencies and without build isolation, so its build backend is the locked one too.
$(STAMP): pyproject.toml requirements/run.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements/run.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

$(TESTSTAMP): $(STAMP) requirements/test.lock
	$(BIN)/pip install --quiet --require-hashes -r requirements/test.lock
	touch $(TESTSTAMP)

venv: $(STAMP)

## Start the MFA server on SQLite (./keyfob.db); the first start prints the admin password,
## asks your organisation's name and writes ~/.config/keyfob/keyfob.toml (unless one exists:
## then its database is served), so that `keyfob admin` finds this server from any folder.
run: $(STAMP)
	$(BIN)/keyfob serve --save-config

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

## Where a validation's server CPU goes: py-spy samples both workers under wrk load (8
## connections, SQLite) → bench/results/profile.md. Installs py-spy once into bench/.tools.
profile: $(TESTSTAMP)
	@command -v wrk >/dev/null || { echo "make profile needs wrk: apt-get install wrk" >&2; exit 1; }
	$(BIN)/python bench/profile_validate.py

## Static checks (CI runs them before the tests): ruff lint + format, mypy --strict on src/.
## Re-resolve the lock files after a change of dependencies in pyproject.toml (needs PyPI).
lock:
	$(PYTHON) scripts/lock.py

## Known vulnerabilities in every locked distribution (PyPI's advisory data; CI runs it).
audit: $(TESTSTAMP)
	$(BIN)/python scripts/audit.py

lint: $(TESTSTAMP)
	$(BIN)/ruff check src tests bench scripts fuzz
	$(BIN)/ruff format --check src tests bench scripts fuzz
	$(BIN)/mypy

## Coverage-guided fuzzing (atheris), FUZZ_SECONDS per target (default 60), then schemathesis
## against the HTTP API on SQLite and PostgreSQL with FUZZ_API_EXAMPLES (default 50) per
## operation and mode. Crashes land in fuzz/crashes/; figures in fuzz/last-run.md.
FUZZ_SECONDS ?= 60
FUZZ_API_EXAMPLES ?= 50
fuzz: $(TESTSTAMP)
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/python fuzz/all.py
	KEYFOB_API_FUZZ_EXAMPLES=$(FUZZ_API_EXAMPLES) $(BIN)/python -m pytest -q tests/hardening/test_api_fuzz.py

## Soak: mixed load for SOAK_SECONDS (default 600) against 2 `keyfob serve` processes on one
## PostgreSQL (KEYFOB_TEST_POSTGRES_URL), then every invariant; figures in bench/results/soak.md.
SOAK_SECONDS ?= 600
soak: $(TESTSTAMP)
	SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts
