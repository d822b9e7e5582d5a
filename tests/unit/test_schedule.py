"""crontab.ist: the jobs at their IST times, read with cronsim."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from jobs import REGISTRY
from lib.clock import IST
from lib.errors import ConfigError
from lib.schedule import CRONTAB_PATH, read_lines, schedule_of


def test_the_schedule_holds_every_job_at_its_time() -> None:
    text = CRONTAB_PATH.read_text()
    assert "CRON_TZ=Asia/Kolkata" in text
    entries = {entry.job: entry.expression for entry in REGISTRY.entries()}
    assert entries == {
        "dailySync": "30 6 * * *",
        "slaCheck": "0 18 * * *",
        "nightlyBackup": "30 23 * * *",
        "userPendingRefresh": "*/5 * * * *",
        "backupDrill": "0 3 * * 0",
        "weeklyReport": "0 8 * * 1",
    }


def test_a_weekly_job_runs_next_on_its_ist_weekday() -> None:
    (drill,) = [entry for entry in REGISTRY.entries() if entry.job == "backupDrill"]
    after = dt.datetime(2026, 11, 28, 21, 29, tzinfo=dt.UTC)  # Saturday 21:29 UTC: Sunday 02:59 IST
    assert drill.next_run(after) == dt.datetime(2026, 11, 29, 3, 0, tzinfo=IST)
    assert drill.latest_slot(after) == dt.datetime(2026, 11, 22, 3, 0, tzinfo=IST)


def test_next_run_is_computed_on_indias_wall_clock() -> None:
    (backup,) = [entry for entry in REGISTRY.entries() if entry.job == "nightlyBackup"]
    after = dt.datetime(2026, 11, 28, 18, 0, tzinfo=dt.UTC)  # 23:30 IST exactly
    assert backup.next_run(after) == dt.datetime(2026, 11, 29, 23, 30, tzinfo=IST)


def test_every_line_names_a_registered_job_and_takes_it_from_the_registry() -> None:
    for entry in REGISTRY.entries():
        assert entry.spec is REGISTRY.find(entry.script)
    assert {line.script for line in read_lines()} == {spec.script for spec in REGISTRY}


def test_a_line_for_a_job_nobody_registered_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "crontab.ist"
    path.write_text("30 6 * * * daily-sink\n")
    with pytest.raises(ConfigError, match=r"crontab.ist:1: no job has the script 'daily-sink'"):
        schedule_of(REGISTRY, path)


def test_a_bad_line_is_reported_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / "crontab.ist"
    path.write_text("CRON_TZ=Asia/Kolkata\n61 6 * * * daily-sync\n")
    with pytest.raises(ConfigError, match=r"crontab.ist:2"):
        read_lines(path)
