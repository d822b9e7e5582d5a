"""What monitoring says of a job: the level and the line check_job() and check_all() give each state."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from lib.health import CRITICAL, WARNING, JobHealth, check_all, check_job, mark_installed
from lib.history import Latest, Run

NOW = dt.datetime(2026, 11, 28, 14, 0, tzinfo=dt.UTC)  # 19:30 IST
TODAY_0630 = "2026-11-28T01:00:00.000Z"
TODAY_1800 = "2026-11-28T12:30:00.000Z"
TWO_DAYS_AGO_0630 = "2026-11-26T01:00:00.000Z"
SLOT = dt.datetime(2026, 11, 28, 6, 30, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))


def health(
    job: str = "dailySync",
    last: Run | None = None,
    missed: int = 0,
    failing_since: str | None = None,
    running: Run | None = None,
    ever_ran: bool = False,
) -> JobHealth:
    state = Latest(last_worked=last, failing_since=failing_since, running=running, ever_ran=ever_ran or bool(last))
    return JobHealth(job, SLOT, missed, state)


def test_a_failed_last_run_is_critical_with_its_time_today_and_its_reason() -> None:
    problems = check_job(health(last=Run("r", TODAY_0630, "failed", error="eCourts refused the token")), NOW, True)
    assert problems == [(CRITICAL, "dailySync: last run failed at 06:30 IST: eCourts refused the token")]


def test_a_crashed_run_of_another_day_is_critical_and_dated() -> None:
    crashed = Run("r", TWO_DAYS_AGO_0630, "crashed", error="no finish line: the run died")
    problems = check_job(health(last=crashed), NOW, True)
    assert problems == [(CRITICAL, "dailySync: last run crashed at 2026-11-26 06:30 IST: no finish line: the run died")]


def test_a_configuration_error_is_critical_since_the_first_of_its_streak() -> None:
    last = Run("r", TODAY_0630, "config", error="CASEJOBS_ECOURTS_TOKEN is not set")
    problems = check_job(health(last=last, failing_since=TWO_DAYS_AGO_0630), NOW, True)
    assert problems == [
        (CRITICAL, "dailySync: configuration error since 2026-11-26 06:30 IST: CASEJOBS_ECOURTS_TOKEN is not set")
    ]
    alone = check_job(health(last=last), NOW, True)
    assert alone == [(CRITICAL, "dailySync: configuration error since 06:30 IST: CASEJOBS_ECOURTS_TOKEN is not set")]


@pytest.mark.parametrize("status", ["partial", "timeout", "interrupted"])
def test_a_run_that_ended_early_or_with_bad_rows_is_a_warning(status: str) -> None:
    problems = check_job(health("slaCheck", last=Run("r", TODAY_1800, status)), NOW, True)
    assert problems == [(WARNING, f"slaCheck: last run {status} at 18:00 IST")]


def test_a_successful_last_run_on_schedule_says_nothing() -> None:
    assert check_job(health(last=Run("r", TODAY_0630, "success")), NOW, True) == []


def test_one_missed_slot_is_a_warning_and_more_are_critical() -> None:
    good = Run("r", TWO_DAYS_AGO_0630, "success")
    assert check_job(health("nightlyBackup", last=good, missed=1), NOW, True) == [
        (WARNING, "nightlyBackup: its last scheduled run was missed")
    ]
    assert check_job(health("nightlyBackup", last=good, missed=3), NOW, True) == [
        (CRITICAL, "nightlyBackup: 3 scheduled runs missed")
    ]


def test_a_failed_run_and_missed_slots_are_both_said() -> None:
    failed = Run("r", TWO_DAYS_AGO_0630, "failed")
    assert check_job(health(last=failed, missed=2), NOW, True) == [
        (CRITICAL, "dailySync: last run failed at 2026-11-26 06:30 IST"),
        (CRITICAL, "dailySync: 2 scheduled runs missed"),
    ]


def test_a_job_that_never_ran_is_a_warning_worded_by_whether_the_schedule_is_installed() -> None:
    assert check_job(health("slaCheck"), NOW, installed=True) == [
        (WARNING, "slaCheck: never ran since the schedule was installed")
    ]
    assert check_job(health("slaCheck"), NOW, installed=False) == [
        (WARNING, "slaCheck: never ran, and the schedule is not installed (bin/jobctl install)")
    ]
    first_run_going_on = Run("r", TODAY_1800, "running")
    assert check_job(health("slaCheck", running=first_run_going_on), NOW, installed=True) == []


def test_nothing_installed_and_nothing_ever_run_is_one_warning_for_all(tmp_path: Path) -> None:
    healths = [health("dailySync"), health("slaCheck")]
    assert check_all(healths, tmp_path, NOW) == [
        (WARNING, "casejobs is not installed (bin/jobctl install) and no job has ever run")
    ]
    ran_by_hand = [health("dailySync", ever_ran=True), health("slaCheck")]
    assert check_all(ran_by_hand, tmp_path, NOW) == [
        (WARNING, "dailySync: never ran, and the schedule is not installed (bin/jobctl install)"),
        (WARNING, "slaCheck: never ran, and the schedule is not installed (bin/jobctl install)"),
    ]


def test_once_installed_each_job_is_judged_on_its_own(tmp_path: Path) -> None:
    mark_installed(tmp_path, NOW - dt.timedelta(hours=1))
    healths = [health("dailySync", last=Run("r", TODAY_0630, "success")), health("slaCheck")]
    assert check_all(healths, tmp_path, NOW) == [(WARNING, "slaCheck: never ran since the schedule was installed")]


def drill_health(last: Run | None, success: str | None) -> JobHealth:
    from jobs import BACKUP_DRILL

    state = Latest(last_worked=last, last_success_start=success, ever_ran=bool(last))
    return JobHealth("backupDrill", SLOT, 0, state, BACKUP_DRILL)


def test_no_successful_drill_for_eight_days_is_a_warning_counted_from_the_newest_success() -> None:
    eight_days = "2026-11-20T14:00:00.000Z"  # exactly 8 days before NOW: still within
    nine_days = "2026-11-19T13:00:00.000Z"
    assert check_job(drill_health(Run("r", eight_days, "success"), eight_days), NOW, True) == []
    stale = check_job(drill_health(Run("r", nine_days, "success"), nine_days), NOW, True)
    assert stale == [(WARNING, "backupDrill: no successful restore drill for 9 days")]
    # Partial drills since (no identity) do not count as drills.
    partial = check_job(
        drill_health(Run("r", TODAY_0630, "partial", error="not restored: no identity"), nine_days), NOW, True
    )
    assert (WARNING, "backupDrill: no successful restore drill for 9 days") in partial
    assert (WARNING, "backupDrill: last run partial at 06:30 IST: not restored: no identity") in partial


def test_a_drill_that_never_succeeded_is_counted_from_the_install() -> None:
    installed = dt.datetime(2026, 11, 18, 14, 0, tzinfo=dt.UTC)
    problems = check_job(drill_health(None, None), NOW, True, installed)
    assert (
        WARNING,
        "backupDrill: no successful restore drill for 10 days since the schedule was installed",
    ) in problems
    recent = check_job(drill_health(None, None), NOW, True, NOW - dt.timedelta(days=2))
    assert all("no successful restore drill" not in line for _, line in recent)


def test_the_drill_has_a_headline_and_other_jobs_have_none() -> None:
    from lib.health import headlines

    three_days = "2026-11-25T14:00:00.000Z"
    assert headlines([drill_health(Run("r", three_days, "success"), three_days)], NOW) == [
        "last restore drill: ok, 3 days ago"
    ]
    failed = Run("r", three_days, "failed", error="the package was altered")
    assert headlines([drill_health(failed, None)], NOW) == [
        "last restore drill: failed, 3 days ago (the package was altered)"
    ]
    assert headlines([drill_health(None, None), health(last=Run("r", TODAY_0630, "success"))], NOW) == []
