"""The schedule written for systemd, Windows Task Scheduler and Kubernetes, each keeping India's time itself."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
import yaml

from jobs import REGISTRY
from lib.errors import CasejobsError
from lib.export import kubernetes_cronjob, on_calendar, systemd_units, windows_task
from lib.schedule import Entry

TASK = "{http://schemas.microsoft.com/windows/2004/02/mit/task}"
ENTRIES = {entry.script: entry for entry in REGISTRY.entries()}


def units() -> dict[str, str]:
    return systemd_units(
        list(ENTRIES.values()),
        Path("/opt/casejobs/bin/run-job"),
        Path("/srv/casejobs"),
        "firm",
        {"CASEJOBS_DB": "/srv/app/firm.db"},
    )


def task_xml(script: str, project: str = "C:\\casejobs") -> ElementTree.Element:
    return ElementTree.fromstring(windows_task(ENTRIES[script], project, "FIRM\\asha"))


def test_systemd_gets_a_service_and_a_timer_per_job() -> None:
    assert sorted(units()) == sorted(f"casejobs-{script}.{kind}" for script in ENTRIES for kind in ("service", "timer"))


def test_a_service_runs_the_job_through_run_job_as_the_given_user_privately() -> None:
    service = units()["casejobs-daily-sync.service"].splitlines()
    assert "User=firm" in service
    assert "UMask=0077" in service
    assert 'Environment="CASEJOBS_HOME=/srv/casejobs"' in service
    assert 'Environment="CASEJOBS_DB=/srv/app/firm.db"' in service
    assert 'ExecStart="/opt/casejobs/bin/run-job" daily-sync --trigger cron' in service
    assert "Type=oneshot" in service


@pytest.mark.parametrize(
    ("script", "calendar"),
    [
        ("daily-sync", "*-*-* 06:30:00 Asia/Kolkata"),
        ("sla-check", "*-*-* 18:00:00 Asia/Kolkata"),
        ("nightly-backup", "*-*-* 23:30:00 Asia/Kolkata"),
        ("user-pending-refresh", "*-*-* *:00/5:00 Asia/Kolkata"),
    ],
)
def test_a_timer_keeps_indias_time_and_catches_up_after_downtime(script: str, calendar: str) -> None:
    timer = units()[f"casejobs-{script}.timer"].splitlines()
    assert f"OnCalendar={calendar}" in timer
    assert "Persistent=true" in timer
    assert f"Unit=casejobs-{script}.service" in timer


def test_a_windows_task_is_utf16_with_a_byte_order_mark_and_says_so() -> None:
    data = windows_task(ENTRIES["daily-sync"], "C:\\casejobs", "FIRM\\asha")
    assert data.startswith(b"\xff\xfe")
    text = data.decode("utf-16")
    assert text.startswith('<?xml version="1.0" encoding="UTF-16"?>')


def test_a_daily_windows_task_starts_at_its_ist_time_pinned_to_plus_05_30() -> None:
    root = task_xml("nightly-backup")
    trigger = root.find(f"{TASK}Triggers/{TASK}CalendarTrigger")
    assert trigger is not None
    assert trigger.findtext(f"{TASK}StartBoundary") == "2026-01-01T23:30:00+05:30"
    assert trigger.find(f"{TASK}Repetition") is None
    settings = root.find(f"{TASK}Settings")
    assert settings is not None
    assert settings.findtext(f"{TASK}MultipleInstancesPolicy") == "IgnoreNew"
    assert settings.findtext(f"{TASK}StartWhenAvailable") == "true"
    assert settings.findtext(f"{TASK}ExecutionTimeLimit") == "PT11880S"  # its 3 h, and a tenth more


def test_a_weekly_job_is_weekly_in_every_export() -> None:
    trigger = task_xml("backup-drill").find(f"{TASK}Triggers/{TASK}CalendarTrigger")
    assert trigger is not None
    assert trigger.findtext(f"{TASK}StartBoundary") == "2026-01-04T03:00:00+05:30"  # a Sunday
    assert trigger.find(f"{TASK}ScheduleByWeek/{TASK}DaysOfWeek/{TASK}Sunday") is not None
    assert trigger.findtext(f"{TASK}ScheduleByWeek/{TASK}WeeksInterval") == "1"
    assert trigger.find(f"{TASK}ScheduleByDay") is None
    assert on_calendar(ENTRIES["backup-drill"]) == "Sun *-*-* 03:00:00 Asia/Kolkata"
    assert "OnCalendar=Sun *-*-* 03:00:00 Asia/Kolkata" in units()["casejobs-backup-drill.timer"]
    manifest = yaml.safe_load(kubernetes_cronjob(ENTRIES["backup-drill"], "casejobs:1"))
    assert manifest["spec"]["schedule"] == "0 3 * * 0" and manifest["spec"]["timeZone"] == "Asia/Kolkata"


def test_the_every_five_minutes_task_repeats_every_five_minutes_all_day() -> None:
    trigger = task_xml("user-pending-refresh").find(f"{TASK}Triggers/{TASK}CalendarTrigger")
    assert trigger is not None
    assert trigger.findtext(f"{TASK}StartBoundary") == "2026-01-01T00:00:00+05:30"
    assert trigger.findtext(f"{TASK}Repetition/{TASK}Interval") == "PT5M"
    assert trigger.findtext(f"{TASK}Repetition/{TASK}Duration") == "P1D"


def test_a_windows_task_runs_the_console_script_and_escapes_the_project_path() -> None:
    project = "C:\\Firm <Legal> & Co\\casejobs"
    action = task_xml("sla-check", project).find(f"{TASK}Actions/{TASK}Exec")
    assert action is not None
    assert action.findtext(f"{TASK}Command") == project + "\\.venv\\Scripts\\casejobs-run-job.exe"
    assert action.findtext(f"{TASK}Arguments") == "sla-check --trigger cron --log-file"
    assert action.findtext(f"{TASK}WorkingDirectory") == project + "\\.venv\\Scripts"


@pytest.mark.parametrize(("script", "deadline"), [("daily-sync", 3600), ("user-pending-refresh", 240)])
def test_a_kubernetes_cronjob_keeps_indias_time_and_never_overlaps(script: str, deadline: int) -> None:
    manifest = yaml.safe_load(kubernetes_cronjob(ENTRIES[script], "registry.firm/casejobs:1.2"))
    spec = manifest["spec"]
    assert (manifest["kind"], manifest["metadata"]["name"]) == ("CronJob", f"casejobs-{script}")
    assert spec["schedule"] == ENTRIES[script].expression
    assert (spec["timeZone"], spec["concurrencyPolicy"], spec["startingDeadlineSeconds"]) == (
        "Asia/Kolkata",
        "Forbid",
        deadline,
    )
    container = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.firm/casejobs:1.2"
    assert container["command"] == ["/app/bin/run-job", script, "--trigger", "cron"]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 9 * * 1-5", "sla-check: only daily, weekly and every-N-minutes schedules can be exported"),
        ("0 9 1 * *", "sla-check: only daily, weekly and every-N-minutes schedules can be exported"),
        ("*/5 * * * 1", "sla-check: only daily, weekly and every-N-minutes schedules can be exported"),
        ("0 9-17 * * *", "cron field '9-17' cannot be exported"),
    ],
)
def test_a_schedule_none_of_them_can_express_is_refused(expression: str, message: str) -> None:
    odd = Entry(expression, ENTRIES["sla-check"].spec)
    with pytest.raises(CasejobsError) as refused:
        on_calendar(odd)
    assert str(refused.value) == message
    with pytest.raises(CasejobsError):
        windows_task(odd, "C:\\casejobs", "FIRM\\asha")
