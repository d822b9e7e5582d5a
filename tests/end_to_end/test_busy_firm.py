"""A busy firm's data, small: the seeder's `small-busy` shape (half of all tasks and subtasks open, due
over a year either side of today), and every figure the jobs write compared with a straightforward
reference computed here, row by row, from data-model.md's rules.

The reference reads the tables with plain Python, one row at a time: no query of the jobs is reused,
so that a cheaper plan in a job cannot change a figure unseen.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from lib.vocabulary import CATEGORIES, PRIORITIES
from tests.conftest import run_script
from tests.helpers import last_finish

NOW = "2026-11-24T18:40:00Z"  # just after midnight IST on 2026-11-25
TODAY = dt.date(2026, 11, 25)
INTERNAL = ("ADMIN", "LAWYER", "PARALEGAL")
OPEN_TASK = ("TODO", "IN_PROGRESS", "BLOCKED")
CAP = 50


@pytest.fixture(scope="module")
def busy_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home holding the small busy database, with a few hostile rows on top of the seeder's."""
    home = tmp_path_factory.mktemp("busy") / "home"
    home.mkdir()
    seeded = run_script("jobctl", "db", "seed", "--scale", "small-busy", home=home, CASEJOBS_NOW=NOW)
    assert seeded.returncode == 0, seeded.stderr
    connection = sqlite3.connect(home / "casejobs.db")
    with connection:
        # An open task and an open case whose due date has the right shape but is no day: counted, skipped.
        connection.execute(
            "UPDATE tasks SET due_date = '2026-02-30' WHERE id = (SELECT min(id) FROM tasks WHERE status = 'TODO')"
        )
        connection.execute(
            "UPDATE cases SET expected_completion_date = '2026-13-45' WHERE id = (SELECT min(id) FROM cases WHERE status = 'OPEN')"
        )
        # Tasks of nobody on a case with no team: every admin is responsible.
        connection.execute("UPDATE cases SET team_id = NULL WHERE id IN (SELECT id FROM cases ORDER BY id LIMIT 20)")
        connection.execute(
            "UPDATE tasks SET assignee_id = NULL WHERE case_id IN (SELECT id FROM cases ORDER BY id LIMIT 20)"
        )
        # A hearing added last but held first: the export lists a case's hearings by date, not by id.
        connection.execute("INSERT INTO hearings (case_id, hearing_date, status) VALUES (1, '2001-01-01', 'HELD')")
    connection.close()
    return home


def rows(database: Path, sql: str) -> list[dict]:
    connection = sqlite3.connect(database)
    connection.row_factory = sqlite3.Row
    found = [dict(row) for row in connection.execute(sql)]
    connection.close()
    return found


def day(value: object) -> dt.date | None:
    """A stored date as a day, or None when it is none (the reference's own reading of data-model.md)."""
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def admins(database: Path) -> set[int]:
    return {user["id"] for user in rows(database, "SELECT id FROM users WHERE role = 'ADMIN' AND is_active = 1")}


def reference_sla(
    database: Path, warning_days: int = 3, only_own: bool = False
) -> tuple[dict[int, list[tuple]], dict[str, int]]:
    """Return each person's items in digest order, as (due date, case number, id, kind, case), and the
    totals of every kind, from data-model.md's SLA terms; only_own leaves out the items of nobody."""
    users = {user["id"]: user for user in rows(database, "SELECT * FROM users")}
    internal = {user_id for user_id, user in users.items() if user["is_active"] == 1 and user["role"] in INTERNAL}
    admin_ids = sorted(user_id for user_id in internal if users[user_id]["role"] == "ADMIN")
    leads = {team["id"]: team["lead_id"] for team in rows(database, "SELECT * FROM teams")}
    cases = {case["id"]: case for case in rows(database, "SELECT * FROM cases")}
    horizon = TODAY + dt.timedelta(days=warning_days)
    totals = dict.fromkeys(("case_violations", "case_warnings", "task_violations", "task_warnings"), 0)
    by_person: dict[int, list[tuple]] = defaultdict(list)

    def add(kind: str, item_id: int, due: dt.date, responsible: int | None, case: dict | None) -> None:
        totals[f"{kind}_{'violations' if due < TODAY else 'warnings'}"] += 1
        item = (due, (case or {}).get("case_number") or "", item_id, kind, case)
        for person in [responsible] if responsible in internal else ([] if only_own else admin_ids):
            by_person[person].append(item)

    for case in cases.values():
        due = day(case["expected_completion_date"])
        if case["status"] in ("OPEN", "IN_PROGRESS", "ON_HOLD") and due is not None and due <= horizon:
            add("case", case["id"], due, case["lawyer_id"], case)
    for task in rows(database, "SELECT * FROM tasks"):
        due = day(task["due_date"])
        if task["status"] in OPEN_TASK and due is not None and due <= horizon:
            case = cases.get(task["case_id"])
            responsible = task["assignee_id"]
            if responsible not in internal:
                responsible = leads.get(case["team_id"]) if case else None
            add("task", task["id"], due, responsible, case)
    return {person: sorted(items) for person, items in by_person.items()}, totals


DIGEST_LINE = re.compile(r"^- (?P<case_number>.+?) · .* · due (?P<due>\d{4}-\d{2}-\d{2}) · ")


def test_every_digest_line_and_count_matches_the_reference(busy_home: Path) -> None:
    database = busy_home / "casejobs.db"
    expected, totals = reference_sla(database)
    assert max(len(items) for items in expected.values()) > 2 * CAP, "the data is not busy enough to test the cap"
    admin = min(person for person in expected if person in admins(database))
    assert len(expected[admin]) > len(reference_sla(database, only_own=True)[0].get(admin, [])), "nobody's items"

    result = run_script("sla-check", home=busy_home, CASEJOBS_NOW=NOW)
    assert result.returncode == 3, result.stderr  # partial: the two dates that are no day
    details = last_finish(busy_home, "slaCheck")["details"]
    assert {key: details[key] for key in totals} == totals
    assert details["bad_dates"] == 2

    digests = {row["user_id"]: row for row in rows(database, "SELECT * FROM notifications WHERE kind = 'SLA_DIGEST'")}
    assert set(digests) == set(expected)
    confidential_titles = {
        case["title"] for case in rows(database, "SELECT title FROM cases WHERE is_confidential = 1")
    }
    for person, items in expected.items():
        body = digests[person]["body"]
        listed = [DIGEST_LINE.match(line) for line in body.splitlines() if line.startswith("- ")]
        assert all(listed), body
        assert [(match["case_number"], match["due"]) for match in listed] == [
            (case_number or "(no case)", due.isoformat()) for due, case_number, *_ in items[:CAP]
        ]
        violations = sum(due < TODAY for due, *_ in items)
        assert digests[person]["title"].endswith(
            f": {violations} violation{'s' * (violations != 1)}, {len(items) - violations} warning{'s' * (len(items) - violations != 1)}"
        )
        hidden = items[CAP:]
        if hidden:
            overdue = sum(due < TODAY for due, *_ in hidden)
            assert body.rstrip().endswith(
                f"and {len(hidden)} more: {overdue} overdue, {len(hidden) - overdue} due soon"
            )
        else:
            assert "more:" not in body
        assert not any(title and title in body for title in confidential_titles)


def test_a_digest_of_400_items_lists_50_and_totals_the_rest(home: Path, dataset) -> None:
    lawyer = dataset.user(name="Asha Rao", email="asha@firm.example")
    secret = dataset.case(lawyer_id=None, is_confidential=1, title="Secret merger", client_name="Hush Corp")
    plain = dataset.case(lawyer_id=None, title="Rao v. State")
    for number in range(380):  # overdue by 1 to 380 days; the confidential case's first
        case = secret if number < 30 else plain
        due = TODAY - dt.timedelta(days=380 - number)
        dataset.task(case, lawyer, title=f"Overdue work {number}", due_date=due.isoformat())
    for number in range(20):  # due today to in 3 days
        dataset.task(
            plain, lawyer, title=f"Soon {number}", due_date=(TODAY + dt.timedelta(days=number % 4)).isoformat()
        )
    dataset.connection.commit()

    result = run_script("sla-check", home=home, CASEJOBS_NOW=NOW)
    assert result.returncode == 0, result.stderr
    (digest,) = rows(home / "casejobs.db", "SELECT * FROM notifications")
    lines = [line for line in digest["body"].splitlines() if line.startswith("- ")]
    assert len(lines) == 50
    assert lines[0].endswith("380 days overdue") and lines[-1].endswith("331 days overdue")
    assert digest["body"].rstrip().endswith("and 350 more: 330 overdue, 20 due soon")
    assert digest["title"].endswith(": 380 violations, 20 warnings")
    assert "Secret merger" not in digest["body"] and "Overdue work 0" not in digest["body"]
    assert "Overdue work 30" in digest["body"]
    figures = last_finish(home, "slaCheck")["details"]
    assert (figures["task_violations"], figures["task_warnings"]) == (380, 20)


def test_the_cap_is_a_setting(home: Path, dataset) -> None:
    lawyer = dataset.user(name="Asha Rao", email="asha@firm.example")
    case = dataset.case(lawyer_id=None)
    for number in range(12):
        dataset.task(case, lawyer, due_date=(TODAY - dt.timedelta(days=number + 1)).isoformat())
    dataset.connection.commit()
    result = run_script("sla-check", home=home, CASEJOBS_NOW=NOW, CASEJOBS_SLA_DIGEST_MAX_ITEMS="5")
    assert result.returncode == 0, result.stderr
    (digest,) = rows(home / "casejobs.db", "SELECT body FROM notifications")
    assert len([line for line in digest["body"].splitlines() if line.startswith("- ")]) == 5
    assert digest["body"].rstrip().endswith("and 7 more: 7 overdue, 0 due soon")
    refused = run_script("sla-check", home=home, CASEJOBS_NOW=NOW, CASEJOBS_SLA_DIGEST_MAX_ITEMS="0")
    assert refused.returncode == 78 and "CASEJOBS_SLA_DIGEST_MAX_ITEMS" in refused.stderr


def test_items_tied_at_the_cut_are_chosen_by_case_number(home: Path, dataset) -> None:
    lawyer = dataset.user(name="Asha Rao", email="asha@firm.example")
    overdue = (TODAY - dt.timedelta(days=10)).isoformat()
    # Case numbers fall as the rows are added, so that the order of the rows on disk is not the order asked.
    cases = [
        dataset.case(lawyer_id=lawyer, case_number=f"C-{900 - number}", expected_completion_date=overdue)
        for number in range(60)
    ]
    for number, case in enumerate(cases):
        dataset.task(case, lawyer, title=f"Work {number}", due_date=overdue)
    result = run_script("sla-check", home=home, CASEJOBS_NOW=NOW)
    assert result.returncode == 0, result.stderr
    (digest,) = rows(home / "casejobs.db", "SELECT * FROM notifications")
    listed = [DIGEST_LINE.match(line)["case_number"] for line in digest["body"].splitlines() if line.startswith("- ")]
    assert listed == sorted(f"C-{900 - number}" for number in range(60) for _kind in ("case", "task"))[:CAP]
    assert digest["body"].rstrip().endswith("and 70 more: 70 overdue, 0 due soon")


def reference_pending(database: Path) -> dict[int, dict]:
    """Return each active internal user's summary as data-model.md's pending table defines it."""
    week_start = TODAY - dt.timedelta(days=TODAY.weekday())
    week_end = week_start + dt.timedelta(days=6)
    month_start = TODAY.replace(day=1)
    month_end = (month_start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    users = rows(database, "SELECT * FROM users")
    internal = {user["id"] for user in users if user["is_active"] == 1 and user["role"] in INTERNAL}
    figures = ("cases", "tasks", "subtasks", "hearings", "orders", "worklogs", "leave_requests", "documents", "team")
    summaries = {
        user_id: {
            **dict.fromkeys(figures, 0),
            **dict.fromkeys(("overdue", "due_today", "due_this_week", "due_this_month"), 0),
            "tasks_by_category": dict.fromkeys(CATEGORIES, 0),
            "by_priority": dict.fromkeys(PRIORITIES, 0),
        }
        for user_id in internal
    }

    def add(user_id: int | None, figure: str, due: object = None, priority: str | None = None, category=None) -> None:
        if user_id not in internal:
            return
        summary = summaries[user_id]
        summary[figure] += 1
        if priority in PRIORITIES:
            summary["by_priority"][priority] += 1
        if figure == "tasks" and category in CATEGORIES:
            summary["tasks_by_category"][category] += 1
        when = day(due)
        if when is not None:
            summary["overdue"] += when < TODAY
            summary["due_today"] += when == TODAY
            summary["due_this_week"] += week_start <= when <= week_end
            summary["due_this_month"] += month_start <= when <= month_end

    cases = {case["id"]: case for case in rows(database, "SELECT * FROM cases")}
    leads = {team["id"]: team["lead_id"] for team in rows(database, "SELECT * FROM teams")}
    tasks = {task["id"]: task for task in rows(database, "SELECT * FROM tasks")}
    for case in cases.values():
        if case["status"] in ("OPEN", "IN_PROGRESS"):
            add(case["lawyer_id"], "cases", case["expected_completion_date"], case["priority"])
    for task in tasks.values():
        if task["status"] in OPEN_TASK and task["assignee_id"] is not None:
            add(task["assignee_id"], "tasks", task["due_date"], task["priority"], task["category"])
        elif task["status"] in OPEN_TASK and task["case_id"] in cases:
            add(leads.get(cases[task["case_id"]]["team_id"]), "team", task["due_date"], task["priority"])
    for subtask in rows(database, "SELECT * FROM subtasks"):
        if subtask["status"] in OPEN_TASK and subtask["task_id"] in tasks:
            add(subtask["assignee_id"], "subtasks", subtask["due_date"], tasks[subtask["task_id"]]["priority"])
    for hearing in rows(database, "SELECT * FROM hearings WHERE status = 'SCHEDULED'"):
        add(hearing["attendee_id"], "hearings", hearing["hearing_date"])
    for order in rows(database, "SELECT * FROM orders WHERE review_status = 'PENDING_REVIEW'"):
        add(order["reviewer_id"], "orders")
    for worklog in rows(database, "SELECT * FROM worklogs"):
        if worklog["status"] == "DRAFT":
            add(worklog["user_id"], "worklogs")
        if worklog["status"] == "SUBMITTED":
            add(worklog["approver_id"], "worklogs")
    for leave in rows(database, "SELECT * FROM leave_requests WHERE status = 'PENDING'"):
        add(leave["approver_id"], "leave_requests", leave["start_date"])
    for document in rows(database, "SELECT * FROM documents"):
        if document["status"] == "PENDING_REVIEW":
            add(document["reviewer_id"], "documents", document["due_date"])
        if document["status"] == "DRAFT":
            add(document["owner_id"], "documents", document["due_date"])
    for summary in summaries.values():
        summary["total"] = sum(summary[figure] for figure in figures)
        summary["urgent"] = summary["by_priority"]["URGENT"]
        levels = [("LOW", 10, 2, 1), ("MODERATE", 15, 3, 2), ("HIGH", 20, 5, 3)]
        summary["workload_level"] = next(
            (
                level
                for level, total, urgent, overdue in levels
                if summary["total"] <= total and summary["urgent"] <= urgent and summary["overdue"] <= overdue
            ),
            "CRITICAL",
        )
    return summaries


def test_every_pending_figure_matches_the_reference(busy_home: Path) -> None:
    database = busy_home / "casejobs.db"
    result = run_script("user-pending-refresh", home=busy_home, CASEJOBS_NOW=NOW)
    assert result.returncode == 3, result.stderr  # partial: the task whose due date is no day
    expected = reference_pending(database)
    assert sum(summary["workload_level"] == "CRITICAL" for summary in expected.values()) > len(expected) // 2
    found = {}
    for row in rows(database, "SELECT * FROM user_pending_summaries"):
        row.pop("refreshed_at")
        row["tasks_by_category"] = json.loads(row["tasks_by_category"])
        row["by_priority"] = json.loads(row["by_priority"])
        found[row.pop("user_id")] = row
    assert found == expected


def reference_cases(database: Path) -> list[dict]:
    """Every case with its children nested, as data-model.md and the README describe cases.json."""
    confidential_text = {
        "cases": ("title", "client_name", "description"),
        "tasks": ("title",),
        "subtasks": ("title",),
        "hearings": ("purpose", "outcome"),
        "orders": ("summary", "document_url"),
        "documents": ("title",),
    }

    def redacted(table: str, row: dict, confidential: bool) -> dict:
        for column in confidential_text[table] if confidential else ():
            if row[column] is not None:
                row[column] = "[redacted]"
        return row

    children = {table: defaultdict(list) for table in ("tasks", "hearings", "orders", "documents")}
    orders = {
        "tasks": lambda row: row["id"],
        "hearings": lambda row: (row["hearing_date"], row["id"]),
        "orders": lambda row: (row["kind"], row["order_no"], row["id"]),
        "documents": lambda row: row["id"],
    }
    for table, by_case in children.items():
        for row in sorted(rows(database, f"SELECT * FROM {table}"), key=orders[table]):
            by_case[row["case_id"]].append(row)
    subtasks = defaultdict(list)
    for subtask in rows(database, "SELECT * FROM subtasks ORDER BY id"):
        subtasks[subtask["task_id"]].append(subtask)
    cases = []
    for case in rows(database, "SELECT * FROM cases ORDER BY id"):
        secret = bool(case["is_confidential"])
        redacted("cases", case, secret)
        for table, by_case in children.items():
            case[table] = [redacted(table, dict(row), secret) for row in by_case[case["id"]]]
        for task in case["tasks"]:
            task["subtasks"] = [redacted("subtasks", dict(subtask), secret) for subtask in subtasks[task["id"]]]
        cases.append(case)
    return cases


def test_the_package_holds_the_database_and_exports_equal_to_a_reference(busy_home: Path, tmp_path: Path) -> None:
    database = busy_home / "casejobs.db"
    result = run_script("nightly-backup", "--force", home=busy_home, CASEJOBS_NOW=NOW)
    assert result.returncode == 0, result.stderr
    (package,) = (busy_home / "backups").glob("casejobs-backup-*.zip")
    tested = subprocess.run(["unzip", "-t", "-q", str(package)], capture_output=True, text=True, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    subprocess.run(["unzip", "-q", str(package), "-d", str(tmp_path)], check=True)

    # The package is one point in time: its database, read here row by row, is the reference of every export.
    packaged = tmp_path / "database.db"
    assert json.loads((tmp_path / "cases.json").read_text()) == reference_cases(packaged)
    users = [
        {key: value for key, value in user.items() if key not in ("password_hash", "api_token", "phone")}
        for user in rows(packaged, "SELECT * FROM users ORDER BY id")
    ]
    assert json.loads((tmp_path / "users.json").read_text()) == users
    since = (dt.datetime.fromisoformat(NOW.replace("Z", "+00:00")) - dt.timedelta(days=30)).strftime(
        "%Y-%m-%dT%H:%M:%S"
    )
    audit = sorted(
        (row for row in rows(packaged, "SELECT * FROM audit_logs") if row["created_at"] >= since),
        key=lambda row: (row["created_at"], row["id"]),
    )
    assert audit and json.loads((tmp_path / "audit-logs.json").read_text()) == audit
    # And that database is the live one as it was: the same rows in every table, but for the job's own audit
    # row, written after the copy.
    tables = [row["name"] for row in rows(database, "SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        live, copied = rows(database, f'SELECT * FROM "{table}"'), rows(packaged, f'SELECT * FROM "{table}"')
        if table == "audit_logs":
            assert [row["entity_name"] for row in live[len(copied) :]] == ["nightlyBackup"]
            live = live[: len(copied)]
        assert copied == live, table
