"""slaCheck through bin/sla-check, with a real SMTP server on 127.0.0.1.

The clock is frozen at 00:10 IST on Wednesday 25 November 2026, which is
still the 24th in UTC: "today" must be the 25th.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.builders import Dataset
from tests.conftest import run_script
from tests.helpers import last_finish
from tests.smtp_server import free_port, smtp_server

JUST_AFTER_MIDNIGHT_IST = "2026-11-24T18:40:00Z"


def sla_check(home: Path, *arguments: str, port: int | None = None, **environment: str):
    if port is not None:
        environment |= {
            "CASEJOBS_SMTP_HOST": "127.0.0.1",
            "CASEJOBS_SMTP_PORT": str(port),
            "CASEJOBS_SMTP_SECURITY": "none",
        }
    return run_script("sla-check", *arguments, home=home, CASEJOBS_NOW=JUST_AFTER_MIDNIGHT_IST, **environment)


def sqlite3_path(home: Path) -> Path:
    return home / "casejobs.db"


def notifications(database_path: Path) -> list[dict]:
    connection = sqlite3.connect(database_path)
    connection.row_factory = sqlite3.Row
    rows = [dict(row) for row in connection.execute("SELECT * FROM notifications ORDER BY user_id")]
    connection.close()
    return rows


def finish_line(home: Path) -> dict:
    return last_finish(home, "slaCheck")


@pytest.fixture
def firm(dataset: Dataset) -> dict[str, int]:
    """Two lawyers with items at -1, 0, +3 and +4 days; closed items that never count."""
    people = {
        "asha": dataset.user(name="Asha Rao", email="asha@firm.example"),
        "bilal": dataset.user(name="Bilal Khan", email="bilal@firm.example"),
    }
    case = dataset.case(lawyer_id=people["asha"], expected_completion_date="2026-11-24", title="Rao v. State")
    dataset.case(lawyer_id=people["asha"], expected_completion_date="2026-11-25", status="ON_HOLD")
    dataset.case(lawyer_id=people["asha"], expected_completion_date="2026-11-20", status="CLOSED")
    dataset.case(lawyer_id=people["asha"], expected_completion_date="2026-11-20", status="ARCHIVED")
    dataset.task(case, people["bilal"], title="Draft reply", due_date="2026-11-28")  # +3: a warning
    dataset.task(case, people["bilal"], title="File vakalat", due_date="2026-11-29")  # +4: nothing
    dataset.task(case, people["bilal"], title="Old work", due_date="2026-11-01", status="DONE")
    dataset.task(case, people["bilal"], title="Dropped", due_date="2026-11-01", status="CANCELLED")
    return people


def test_violations_and_warnings_at_the_ist_day_boundary(home: Path, firm: dict, database_path: Path) -> None:
    result = sla_check(home)

    assert result.returncode == 0, result.stderr
    details = finish_line(home)["details"]
    assert {key: details[key] for key in ("case_violations", "case_warnings", "task_violations", "task_warnings")} == {
        "case_violations": 1,
        "case_warnings": 1,
        "task_violations": 0,
        "task_warnings": 1,
    }
    asha, bilal = notifications(database_path)
    assert (asha["kind"], asha["dedupe_key"]) == ("SLA_DIGEST", f"sla:{firm['asha']}:2026-11-25")
    assert asha["title"] == "SLA digest 2026-11-25: 1 violation, 1 warning"
    body = asha["body"].splitlines()
    violations, warnings = body.index("Violations (past their due date):"), body.index("Warnings (due soon):")
    assert violations < warnings
    assert body[violations + 1].endswith("Rao v. State · due 2026-11-24 · 1 day overdue")
    assert body[warnings + 1].endswith("due 2026-11-25 · due today")
    assert "task: Draft reply · due 2026-11-28 · 3 days left" in bilal["body"]
    assert "File vakalat" not in bilal["body"]
    assert {asha["email_status"], bilal["email_status"]} == {"SKIPPED"}  # no SMTP configured: in-app only


def test_responsible_person_falls_back_to_team_lead_then_admins(
    home: Path, dataset: Dataset, database_path: Path
) -> None:
    lead = dataset.user(name="Lead")
    admins = [dataset.user(role="ADMIN", name="Admin One"), dataset.user(role="ADMIN", name="Admin Two")]
    dataset.user(role="ADMIN", is_active=0, name="Retired Admin")
    gone = dataset.user(is_active=0, name="Gone")
    team_case = dataset.case(team_id=dataset.team(lead), expected_completion_date="2027-01-01")
    lone_case = dataset.case(expected_completion_date="2027-01-01")
    dataset.task(team_case, None, title="Unassigned in a team", due_date="2026-11-20")
    dataset.task(team_case, gone, title="Left with someone who left", due_date="2026-11-21")
    dataset.task(lone_case, None, title="Nobody's", due_date="2026-11-22")

    assert sla_check(home).returncode == 0

    bodies = {row["user_id"]: row["body"] for row in notifications(database_path)}
    assert set(bodies) == {lead, *admins}
    assert "Unassigned in a team" in bodies[lead] and "Left with someone who left" in bodies[lead]
    assert "Nobody's" not in bodies[lead]
    for admin in admins:
        assert "Nobody's" in bodies[admin] and "Unassigned in a team" not in bodies[admin]


def test_mail_is_sent_once_a_day_and_again_with_force(home: Path, firm: dict, database_path: Path) -> None:
    with smtp_server() as (server, received):
        first = sla_check(home, port=server.port)
        second = sla_check(home, port=server.port)
        after_two_runs = len(received.messages)
        forced = sla_check(home, "--force", port=server.port)

    assert (first.returncode, second.returncode, forced.returncode) == (0, 0, 0)
    assert after_two_runs == 2
    assert len(received.messages) == 4
    assert len(notifications(database_path)) == 2
    message = next(m for m in received.messages if m["To"].addresses[0].addr_spec == "asha@firm.example")
    assert message["Subject"] == "SLA digest 2026-11-25: 1 violation, 1 warning"
    assert "Rao v. State · due 2026-11-24 · 1 day overdue" in message.get_body(("plain",)).get_content()
    assert "<li>" in message.get_body(("html",)).get_content()
    assert {row["email_status"] for row in notifications(database_path)} == {"SENT"}
    assert finish_line(home)["details"]["emails_sent"] == 2
    assert json.loads(first.stderr.splitlines()[-1])["details"]["notified_users"] == 2
    assert json.loads(second.stderr.splitlines()[-1])["details"]["notified_users"] == 0


def test_a_refused_recipient_fails_alone_and_is_retried_the_same_day(
    home: Path, firm: dict, database_path: Path
) -> None:
    with smtp_server() as (server, received):
        received.refused.add("bilal@firm.example")
        first = sla_check(home, port=server.port)
        statuses = {row["user_id"]: row["email_status"] for row in notifications(database_path)}
        received.refused.clear()
        retry = sla_check(home, port=server.port)

    assert first.returncode == 3  # partial: finished, one item failed
    assert statuses == {firm["asha"]: "SENT", firm["bilal"]: "FAILED"}
    assert "recipient refused: 550" in first.stderr
    assert retry.returncode == 0
    recipients = [message["To"].addresses[0].addr_spec for message in received.messages]
    assert recipients == ["asha@firm.example", "bilal@firm.example"]  # only the failed one again
    assert {row["email_status"] for row in notifications(database_path)} == {"SENT"}


def test_a_server_that_is_down_fails_the_mail_but_keeps_the_notifications(
    home: Path, firm: dict, database_path: Path
) -> None:
    result = sla_check(home, port=free_port())

    assert result.returncode == 3
    rows = notifications(database_path)
    assert len(rows) == 2 and {row["email_status"] for row in rows} == {"FAILED"}
    assert finish_line(home)["details"]["emails_failed"] == 2
    assert "connection refused" in result.stderr


def test_a_refused_login_is_tried_once_and_stops_mailing_for_the_run(
    home: Path, dataset: Dataset, database_path: Path
) -> None:
    for number in range(20):
        dataset.case(
            lawyer_id=dataset.user(email=f"lawyer{number}@firm.example"), expected_completion_date="2026-11-20"
        )
    with smtp_server(refuse_logins=True) as (server, received):
        result = sla_check(home, port=server.port, CASEJOBS_SMTP_USER="casejobs", CASEJOBS_SMTP_PASSWORD="wrong-pass")

    assert result.returncode == 3
    assert received.messages == [] and received.login_attempts == 1  # never enough to lock the account
    rows = notifications(database_path)
    assert len(rows) == 20 and {row["email_status"] for row in rows} == {"FAILED"}
    details = finish_line(home)["details"]
    assert details["emails_failed"] == 20 and details["mail_error"].startswith("SMTP login refused: 535")
    warnings = [json.loads(line) for line in result.stderr.splitlines() if '"level": "warning"' in line]
    assert [warning["event"] for warning in warnings] == ["SMTP login refused: no more mail this run", "run finished"]
    assert "wrong-pass" not in result.stderr


def test_a_server_that_stops_answering_costs_one_timeout_and_every_digest_is_still_stored(
    home: Path, dataset: Dataset, database_path: Path
) -> None:
    for number in range(8):
        dataset.case(
            lawyer_id=dataset.user(email=f"lawyer{number}@firm.example"), expected_completion_date="2026-11-20"
        )
    with smtp_server() as (server, received):
        received.stall = True  # accepts the connection and the recipient, then never answers the message
        result = sla_check(home, port=server.port, CASEJOBS_SMTP_TIMEOUT="2")
        stalled = received.stalled_messages

    assert result.returncode == 3, result.stderr
    assert stalled == 1  # one message waited out the timeout; the other seven were never tried
    rows = notifications(database_path)
    assert len(rows) == 8 and {row["email_status"] for row in rows} == {"FAILED"}  # every digest in the app
    details = finish_line(home)["details"]
    assert details["emails_failed"] == 8 and details["mail_error"].startswith("SMTP server stopped answering")


def test_the_password_file_must_be_private(home: Path, firm: dict, tmp_path: Path) -> None:
    password_file = tmp_path / "smtp-password"
    password_file.write_text("s3cret\n")
    password_file.chmod(0o644)

    result = sla_check(home, port=free_port(), CASEJOBS_SMTP_PASSWORD_FILE=str(password_file))

    assert result.returncode == 78
    assert "CASEJOBS_SMTP_PASSWORD_FILE" in result.stderr and "chmod 600" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_confidential_cases_leave_the_database_by_number_only(
    home: Path, dataset: Dataset, database_path: Path
) -> None:
    lawyer = dataset.user(email="lawyer@firm.example")
    secret_case = dataset.case(
        lawyer_id=lawyer,
        is_confidential=1,
        title="Secret merger",
        client_name="Hush Corp",
        expected_completion_date="2026-11-20",
    )
    dataset.task(secret_case, lawyer, title="Negotiate with Hush Corp", due_date="2026-11-21")

    with smtp_server() as (server, received):
        result = sla_check(home, "-v", port=server.port)

    (message,) = received.messages
    everything_sent = message.as_string() + result.stderr + notifications(database_path)[0]["body"]
    for secret in ("Secret merger", "Hush Corp"):
        assert secret not in everything_sent
    assert "CASE-2026-" in message.get_body(("plain",)).get_content()


def test_a_date_that_is_no_calendar_day_is_skipped_counted_and_named(home: Path, dataset: Dataset) -> None:
    lawyer = dataset.user()
    case = dataset.case(lawyer_id=lawyer, expected_completion_date="15/03/2024")
    bad_task = dataset.task(case, lawyer, due_date="2026-02-30")
    far_task = dataset.task(case, lawyer, due_date="2026-13-45")  # sorts after the horizon: still found
    dataset.task(case, lawyer, due_date="2026-11-20")

    result = sla_check(home)

    assert result.returncode == 3  # partial: the bad rows were skipped, the good one served
    details = finish_line(home)["details"]
    assert (details["bad_dates"], details["task_violations"], details["case_violations"]) == (3, 1, 0)
    named = {(row["table"], row["id"]) for row in details["bad_rows"]}
    assert named == {("cases", case), ("tasks", bad_task), ("tasks", far_task)}
    assert all("15/03" not in row["reason"] for row in details["bad_rows"])  # by id, never by content
    warnings = [json.loads(line) for line in result.stderr.splitlines() if "bad row" in line]
    assert {(warning["table"], warning["id"]) for warning in warnings} == named
    assert [row["user_id"] for row in notifications(sqlite3_path(home))] == [lawyer]


def test_dry_run_prints_each_person_and_writes_nothing(home: Path, firm: dict, database_path: Path) -> None:
    with smtp_server() as (server, received):
        result = sla_check(home, "--dry-run", port=server.port)

    assert result.returncode == 0
    assert "Asha Rao <asha@firm.example>: SLA digest 2026-11-25: 1 violation, 1 warning" in result.stdout
    assert "task: Draft reply · due 2026-11-28 · 3 days left" in result.stdout
    assert notifications(database_path) == []
    assert received.messages == []
    audit = sqlite3.connect(database_path).execute("SELECT count(*) FROM audit_logs").fetchone()
    assert audit == (0,)


def test_the_audit_row_carries_the_figures(home: Path, firm: dict, database_path: Path) -> None:
    assert sla_check(home).returncode == 0

    action, details = sqlite3.connect(database_path).execute("SELECT action, details FROM audit_logs").fetchone()
    figures = json.loads(details)["details"]
    assert action == "JOB_COMPLETED"
    for key in (
        "case_violations",
        "task_violations",
        "case_warnings",
        "task_warnings",
        "notified_users",
        "emails_sent",
        "emails_failed",
    ):
        assert key in figures
