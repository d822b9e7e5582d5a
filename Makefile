# casejobs: the commands a person types. `make demo` and `make test` do all set-up.
PYTHON3 ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: help venv demo test check lint format bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	@$(PYTHON3) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "casejobs needs Python 3.11 or newer; set PYTHON3=python3.11")'
	$(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# The dependencies of pyproject.toml; the project itself runs from this folder (bin/_python).
	$(PY) -c 'import subprocess, sys, tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	    sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--quiet", *p["dependencies"], *p["optional-dependencies"]["dev"]]))'
	@touch $(STAMP)

venv: $(STAMP)  ## create the virtualenv and install the dependencies

demo: venv  ## run every job once on the demo database under var/, then show jobstats
	@test -f var/casejobs.db || bin/jobctl db seed --scale small
	@bin/jobctl db init
	CASEJOBS_ECOURTS_BASE_URL=sim:// CASEJOBS_ECOURTS_TOKEN=demo-token bin/daily-sync --log-format console
	bin/user-pending-refresh --log-format console
	bin/sla-check --log-format console
	bin/nightly-backup --log-format console
	@echo
	bin/jobstats

test: venv  ## run the whole test suite
	$(PY) -m pytest -q

check: test  ## tests, ruff check and ruff format --check (what CI runs)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv  ## reformat the code
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: venv  ## build the large database once and run the benchmarks under bench/
	$(PY) -m bench.run

clean:  ## remove the virtualenv and the demo data
	rm -rf $(VENV) var .pytest_cache
