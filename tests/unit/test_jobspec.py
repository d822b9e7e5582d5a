"""A job's declaration: Outcome's figures and bad rows, what a JobSpec derives, and the Registry's checks."""

from __future__ import annotations

import pytest

from jobs import REGISTRY
from lib.errors import ConfigError
from lib.jobspec import MAX_BAD_ROWS, JobSpec, Outcome, Registry, snake_case


def test_add_starts_a_figure_at_zero_and_adds_to_it() -> None:
    outcome = Outcome()
    outcome.add("synced")
    outcome.add("synced", 4)
    outcome.add("retries", 0)
    assert outcome.details == {"synced": 5, "retries": 0}
    assert (outcome.items, outcome.errors) == (0, 0)


def test_a_bad_row_is_counted_and_named_by_table_and_id() -> None:
    outcome = Outcome(errors=1)
    outcome.bad_row("tasks", 12, "due_date is no calendar day")
    assert outcome.errors == 2
    assert outcome.details == {
        "bad_rows_total": 1,
        "bad_rows": [{"table": "tasks", "id": 12, "reason": "due_date is no calendar day"}],
    }


def test_only_the_first_fifty_bad_rows_are_named_but_all_are_counted() -> None:
    outcome = Outcome()
    for number in range(MAX_BAD_ROWS + 7):
        outcome.bad_row("cases", number, "bad")
    assert MAX_BAD_ROWS == 50
    assert outcome.errors == 57
    assert outcome.details["bad_rows_total"] == 57
    named = outcome.details["bad_rows"]
    assert len(named) == 50
    assert [row["id"] for row in named] == list(range(50))


def test_a_spec_derives_its_module_and_monitoring_key_from_its_names() -> None:
    spec = JobSpec(name="userPendingRefresh", script="user-pending-refresh", summary="", time_limit=240)
    assert spec.module == "jobs.user_pending_refresh"
    assert spec.monitor_key == "monitor.user_pending_refresh_url"
    assert snake_case("dailySync") == "daily_sync"


def test_setting_scopes_hold_core_its_own_sections_once_the_shared_ones_and_its_monitoring() -> None:
    spec = REGISTRY.job("slaCheck")
    assert spec.setting_scopes == (
        "core",
        "sla",
        "smtp",
        "monitor.sla_check_url",
        "monitor.timeout",
        "monitor.body_lines",
    )
    sync = REGISTRY.job("dailySync")
    assert sync.setting_scopes[:3] == ("core", "ecourts", "sync")  # twelve settings, two sections, each once
    assert sync.setting_scopes.count("ecourts") == 1


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (
            (
                JobSpec(name="alpha", script="alpha-one", summary="", time_limit=1),
                JobSpec(name="alpha", script="alpha-two", summary="", time_limit=1),
            ),
            "two jobs have the name alpha",
        ),
        (
            (
                JobSpec(name="alphaOne", script="alpha", summary="", time_limit=1),
                JobSpec(name="alphaTwo", script="alpha", summary="", time_limit=1),
            ),
            "two jobs have the script alpha",
        ),
    ],
)
def test_a_registry_refuses_two_jobs_with_the_same_name_or_script(specs: tuple[JobSpec, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Registry(specs)


def test_find_takes_a_ledger_name_or_a_script_and_job_insists() -> None:
    assert REGISTRY.find("dailySync") is REGISTRY.find("daily-sync")
    assert REGISTRY.find("daily-sync").script == "daily-sync"
    assert REGISTRY.find("daily_sync") is None
    assert REGISTRY.find("DailySync") is None
    with pytest.raises(KeyError):
        REGISTRY.job("monthly-report")
    assert [spec.name for spec in REGISTRY] == [
        "dailySync",
        "slaCheck",
        "nightlyBackup",
        "userPendingRefresh",
        "backupDrill",
        "weeklyReport",
    ]
