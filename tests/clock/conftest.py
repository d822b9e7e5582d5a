"""These tests drive a real cron daemon under a faked clock for minutes: `make test-clock` runs them (and CI
through .ci/run), never `make test`."""

from __future__ import annotations

import os

collect_ignore_glob = [] if os.environ.get("CASEJOBS_CLOCK_TESTS") else ["test_*.py"]
