# casejobs: the commands a person types. `make demo` and `make test` do all set-up.
PYTHON3 ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
LOWEST := .venv-lowest
# The demo's own home: its database, ledger and backups. `make clean` removes it; it never touches var/,
# the default home of a real installation.
DEMO_HOME := $(CURDIR)/demo

.PHONY: help venv demo test test-lowest test-install test-clock check lint format bench lock clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON3) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "casejobs needs Python 3.11 or newer; set PYTHON3=python3.11")'
	$(PYTHON3) -m venv $(VENV)
	@# Exactly the locked versions, each checked against its hash; the project itself runs from this folder (bin/_python).
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	@touch $(STAMP)

venv: $(STAMP)  ## create the virtualenv with the locked dependencies (requirements.lock, hashes checked)

demo: venv  ## run every job once on a small demo database in demo/, then show jobstats
demo: export CASEJOBS_HOME := $(DEMO_HOME)
demo:
	@test -f $(DEMO_HOME)/casejobs.db || bin/jobctl db seed --scale small
	@test -f $(DEMO_HOME)/casejobs.toml || (umask 077 && printf '# the demo: eCourts is the built-in simulator\n[ecourts]\nbase_url = "sim://"\ntoken = "demo-token"\n' > $(DEMO_HOME)/casejobs.toml)
	@bin/jobctl db init
	@# Exit 3 is "partial": the demo data holds a few bad rows (invalid CNRs) on purpose, to show how they are reported.
	bin/daily-sync --log-format console || test $$? -eq 3
	bin/user-pending-refresh --log-format console || test $$? -eq 3
	bin/sla-check --log-format console || test $$? -eq 3
	bin/nightly-backup --log-format console || test $$? -eq 3
	bin/backup-drill --log-format console
	@echo
	bin/jobstats
	@bin/jobstats --html $(DEMO_HOME)/report.html
	@echo
	@echo "The demo's home is $(DEMO_HOME). Open $(DEMO_HOME)/report.html in a browser for the report. To try the README's examples on it: export CASEJOBS_HOME=$(DEMO_HOME)"

test: venv  ## run the whole test suite
	$(PY) -m pytest -q

check: test  ## tests, ruff check and ruff format --check (what CI runs)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test-lowest: venv  ## the suite against the lowest versions pyproject.toml allows, in .venv-lowest (CI runs it)
	$(PYTHON3) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet --upgrade pip
	$(LOWEST)/bin/python -c 'import re, subprocess, sys, tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	    lowest = [re.sub(r">=([^,]+).*", r"==\1", requirement) for requirement in p["dependencies"] + p["optional-dependencies"]["dev"]]; \
	    print("lowest:", " ".join(lowest)); sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--quiet", *lowest]))'
	CASEJOBS_VENV=$(CURDIR)/$(LOWEST) $(LOWEST)/bin/python -m pytest -q -p no:cacheprovider

test-install: venv  ## pip install the project into a fresh virtualenv and run each console script (CI runs it)
	CASEJOBS_INSTALL_TESTS=1 $(PY) -m pytest -q -p no:cacheprovider tests/install

test-clock: venv  ## a real cron daemon on a faked clock through 2027's clock changes (root, cron, faketime; CI runs it)
	CASEJOBS_CLOCK_TESTS=1 $(PY) -m pytest -q -p no:cacheprovider -s tests/clock

format: venv  ## reformat the code
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: venv  ## build the large database once and run the benchmarks under bench/
	$(PY) -m bench.run

lock:  ## recompute requirements.lock from pyproject.toml (needs the registry)
	$(PYTHON3) -m venv /tmp/casejobs-lock-venv
	/tmp/casejobs-lock-venv/bin/python -m pip install --quiet pip-tools
	/tmp/casejobs-lock-venv/bin/pip-compile --quiet --generate-hashes --allow-unsafe --extra dev --strip-extras \
	    --no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml

clean:  ## remove the virtualenvs and the demo's own folder; never var/ (a real home) nor any backup
	rm -rf $(VENV) $(LOWEST) $(DEMO_HOME) .pytest_cache .ruff_cache
