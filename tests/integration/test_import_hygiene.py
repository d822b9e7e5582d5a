"""What a production run loads: importing a job, jobctl or jobstats never loads the eCourts simulator
(a test double with its HTTP server) nor the demo-data seeder."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import PROJECT

MODULES = ["jobs.daily_sync", "jobs.sla_check", "jobs.nightly_backup", "jobs.user_pending_refresh"]
MODULES += ["ops.jobctl", "ops.jobstats", "jobs"]


@pytest.mark.parametrize("module", MODULES)
def test_importing_loads_neither_the_simulator_nor_the_seeder(module: str) -> None:
    probe = (
        f"import sys, {module}; "
        "print(sorted(name for name in sys.modules if name in ('lib.ecourts_sim', 'lib.seed', 'http.server')))"
    )
    result = subprocess.run(
        [sys.executable, "-P", "-c", probe],
        cwd=PROJECT,
        env={"PYTHONPATH": str(PROJECT)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
