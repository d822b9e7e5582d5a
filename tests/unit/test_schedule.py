"""crontab.ist: the four jobs at their IST times, read with cronsim."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from lib.clock import IST
from lib.errors import ConfigError
from lib.schedule import CRONTAB_PATH, job_name_for_script, read_schedule


def test_the_schedule_holds_the_four_jobs_at_their_times() -> None:
    text = CRONTAB_PATH.read_text()
    assert "CRON_TZ=Asia/Kolkata" in text
    entries = {entry.job: entry.expression for entry in read_schedule()}
    assert entries == {
        "dailySync": "30 6 * * *",
        "slaCheck": "0 18 * * *",
        "nightlyBackup": "30 23 * * *",
        "userPendingRefresh": "*/5 * * * *",
    }


def test_next_run_is_computed_on_indias_wall_clock() -> None:
    (backup,) = [entry for entry in read_schedule() if entry.job == "nightlyBackup"]
    after = dt.datetime(2026, 11, 28, 18, 0, tzinfo=dt.UTC)  # 23:30 IST exactly
    assert backup.next_run(after) == dt.datetime(2026, 11, 29, 23, 30, tzinfo=IST)


def test_script_names_become_job_names() -> None:
    assert job_name_for_script("user-pending-refresh") == "userPendingRefresh"
    assert job_name_for_script("daily-sync") == "dailySync"


def test_a_bad_line_is_reported_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / "crontab.ist"
    path.write_text("CRON_TZ=Asia/Kolkata\n61 6 * * * daily-sync\n")
    with pytest.raises(ConfigError, match=r"crontab.ist:2"):
        read_schedule(path)
