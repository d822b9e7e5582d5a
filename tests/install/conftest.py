"""These tests build and install the project into a fresh virtualenv: `make test-install` runs them (and CI
through .ci/run), never `make test`."""

from __future__ import annotations

import os

collect_ignore_glob = [] if os.environ.get("CASEJOBS_INSTALL_TESTS") else ["test_*.py"]
