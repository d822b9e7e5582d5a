"""Adding a job takes one module, one registry entry and one crontab line, and nothing else: the new job
appears in status, the exports, jobstats, install and its own settings, and it runs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.conftest import PROJECT, cron_environment

REGISTRY_ENTRY = """
from lib.settings import TEXT  # noqa: E402

HELLO_JOB = JobSpec(
    name="helloJob",
    script="hello-job",
    summary="Count the users and greet them.",
    time_limit=60,
    settings=(Setting("hello", "greeting", "namaste", TEXT, "what the job says"),),
)
REGISTRY = Registry((*REGISTRY.specs, HELLO_JOB))
"""


def run(copy: Path, home: Path, *arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(copy / "bin" / arguments[0]), *arguments[1:]],
        env=cron_environment(home, **environment),
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_job_added_from_a_module_appears_everywhere(fresh_copy: Path, home: Path, database_path: Path) -> None:
    shutil.copy(PROJECT / "tests" / "fixtures" / "hello_job.py", fresh_copy / "jobs" / "hello_job.py")
    with (fresh_copy / "jobs" / "__init__.py").open("a") as registry:
        registry.write(REGISTRY_ENTRY)
    with (fresh_copy / "crontab.ist").open("a") as schedule:
        schedule.write("15   7   *  *  *   hello-job\n")

    ran = run(fresh_copy, home, "run-job", "hello-job", CASEJOBS_HELLO_GREETING="vanakkam")
    status = json.loads(run(fresh_copy, home, "jobctl", "status", "--json").stdout)
    stats = json.loads(run(fresh_copy, home, "jobstats", "--json").stdout)
    block = run(fresh_copy, home, "jobctl", "install", "--dry-run", "--cron-flavor", "debian", "--host-tz", "UTC")
    exports = {}
    for export_format in ("systemd", "windows", "k8s"):
        out = home / "export" / export_format
        assert run(fresh_copy, home, "jobctl", "export", "--format", export_format, "--out", str(out)).returncode == 0
        exports[export_format] = sorted(path.name for path in out.iterdir())
    bad_setting = run(fresh_copy, home, "run-job", "hello-job", CASEJOBS_HELLO_GREETING="a\x01b")

    assert ran.returncode == 0, ran.stderr
    finish = next(json.loads(line) for line in ran.stderr.splitlines() if '"run finished"' in line)
    assert finish["details"]["greeting"] == "vanakkam" and finish["items"] == 0
    assert status["jobs"]["helloJob"]["next_run"].endswith("07:15:00+05:30")
    assert stats["jobs"]["helloJob"]["runs"] == 1 and stats["jobs"]["helloJob"]["status_counts"]["success"] == 1
    assert (
        "45 1 * * * umask 077;" in block.stdout
    )  # 07:15 IST in UTC and "run-job hello-job --trigger cron" in block.stdout
    assert "casejobs-hello-job.service" in exports["systemd"] and "casejobs-hello-job.timer" in exports["systemd"]
    assert "casejobs-hello-job.xml" in exports["windows"] and "casejobs-hello-job.yaml" in exports["k8s"]
    assert bad_setting.returncode == 78 and "CASEJOBS_HELLO_GREETING" in bad_setting.stderr
