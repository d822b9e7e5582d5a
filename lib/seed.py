"""Realistic, deterministic demo data shaped like a real firm's history.

Most tasks, subtasks, hearings, orders and documents are long finished; a
minority is open, with due dates spread around "today" (IST) so that there
is always something overdue, due today, this week and this month. The same
seed and the same day give the same database.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import sqlite_utils

from lib.clock import format_utc
from lib.db import write_transaction
from lib.errors import CasejobsError
from lib.scales import SCALES, Scale

FIRST_NAMES = [
    "Aarav",
    "Aditi",
    "Akash",
    "Ananya",
    "Arjun",
    "Bhavna",
    "Chetan",
    "Deepa",
    "Dev",
    "Divya",
    "Gaurav",
    "Ishaan",
    "Kavya",
    "Kiran",
    "Lakshmi",
    "Manish",
    "Meera",
    "Neha",
    "Nikhil",
    "Pooja",
    "Priya",
    "Rahul",
    "Ravi",
    "Rohan",
    "Sanjay",
    "Shreya",
    "Sunil",
    "Tanvi",
    "Varun",
    "Zoya",
]
LAST_NAMES = [
    "Agarwal",
    "Banerjee",
    "Bhat",
    "Chatterjee",
    "Desai",
    "Gupta",
    "Iyer",
    "Jain",
    "Joshi",
    "Kapoor",
    "Khan",
    "Kulkarni",
    "Menon",
    "Mehta",
    "Nair",
    "Pillai",
    "Rao",
    "Reddy",
    "Shah",
    "Sharma",
    "Singh",
    "Srinivasan",
    "Verma",
]
CLIENT_WORDS = [
    "Acme",
    "Bharat",
    "Coastal",
    "Deccan",
    "Everest",
    "Ganga",
    "Himalaya",
    "Indus",
    "Jaipur",
    "Kaveri",
    "Lotus",
    "Malabar",
    "Narmada",
    "Orchid",
]
CLIENT_SUFFIXES = ("Pvt Ltd", "Industries", "Traders", "Holdings", "& Sons", "Estates", "Textiles")
CASE_TYPES = ("Civil Suit", "Criminal Appeal", "Writ Petition", "Arbitration", "Commercial Suit", "Bail Application")
COURTS = (
    ("Bombay High Court", "HCBM01"),
    ("Delhi High Court", "DLHC01"),
    ("City Civil Court, Mumbai", "MHCC01"),
    ("District Court, Aurangabad", "MHAU01"),
    ("District Court, Pune", "MHPU01"),
    ("Saket District Court", "DLST01"),
)
CATEGORIES = ("RESEARCH", "DRAFTING", "FILING", "HEARING_PREP", "CLIENT_COMMUNICATION", "ADMINISTRATIVE")
PRIORITIES = ("LOW", "MEDIUM", "MEDIUM", "HIGH", "LOW", "MEDIUM", "HIGH", "URGENT")
TASK_VERBS = ("Draft", "Review", "File", "Research", "Prepare", "Call client about", "Collect", "Serve")
TASK_OBJECTS = (
    "written statement",
    "affidavit",
    "vakalatnama",
    "evidence list",
    "rejoinder",
    "case law",
    "notice",
    "synopsis",
)
HEARING_PURPOSES = ("Arguments", "Evidence", "Framing of issues", "Orders", "Appearance", "Cross-examination")
DOCUMENT_KINDS = ("PLEADING", "AFFIDAVIT", "EVIDENCE", "CORRESPONDENCE", "ORDER_COPY")

BATCH = 20_000  # rows per executemany: big enough to be fast, small enough to stay lean


def _pick(rng: random.Random, options: tuple) -> object:
    return options[int(rng.random() * len(options))]


class _Days:
    """YYYY-MM-DD strings by offset from today, computed once (the hot path builds millions)."""

    def __init__(self, today: dt.date, past: int = 3300, future: int = 800) -> None:
        self.past = past
        self.strings = [(today + dt.timedelta(days=offset)).isoformat() for offset in range(-past, future)]

    def at(self, offset: int) -> str:
        return self.strings[offset + self.past]


def _case_number_and_cnr(rng: random.Random, number: int, filed: dt.date) -> tuple[str, str | None, tuple[str, str]]:
    """Return a case number, a CNR (valid 70%, written loosely 10%, invalid 8%, missing 12%) and its court."""
    court = _pick(rng, COURTS)
    case_number = f"CASE-{filed.year}-{number:06d}"
    draw = rng.random()
    if draw < 0.12:
        return case_number, None, court
    serial = f"{rng.randrange(1, 999_999):06d}"
    if draw < 0.20:
        return (
            case_number,
            _pick(rng, ("MH12-00-2023", "ABC", f"{court[1]}000000{filed.year}", "DLHC019999991900")),
            court,
        )
    cnr = f"{court[1]}{serial}{filed.year}"
    if draw < 0.30:
        cnr = f"{cnr[:6].lower()}-{cnr[6:12]}-{cnr[12:]}"
    return case_number, cnr, court


def _users(rng: random.Random, scale: Scale, now_text: str) -> list[tuple]:
    rows = []
    for user_id in range(1, scale.users + 1):
        draw = rng.random()
        if user_id <= max(2, scale.users // 25):
            role = "ADMIN"
        elif draw < 0.45:
            role = "LAWYER"
        elif draw < 0.75:
            role = "PARALEGAL"
        elif draw < 0.9:
            role = "CLIENT"
        else:
            role = "EXTERNAL"
        first, last = _pick(rng, FIRST_NAMES), _pick(rng, LAST_NAMES)
        is_active = 0 if (user_id > 2 and rng.random() < 0.08) else 1
        rows.append(
            (
                user_id,
                f"{first} {last}",
                f"{first.lower()}.{last.lower()}.{user_id}@firm.example",
                role,
                is_active,
                f"+91 98{rng.randrange(10**8):08d}",
                f"pbkdf2_sha256$600000${rng.getrandbits(64):016x}",
                f"tok_{rng.getrandbits(128):032x}",
                now_text,
                now_text,
            )
        )
    return rows


@dataclass
class _People:
    """Who can do what, as lists of user ids to draw from."""

    internal: list[int]
    lawyers: list[int]
    approvers: list[int]


def _people(users: list[tuple]) -> _People:
    internal = [row[0] for row in users if row[3] in ("ADMIN", "LAWYER", "PARALEGAL")]
    lawyers = [row[0] for row in users if row[3] == "LAWYER"] or internal
    approvers = [row[0] for row in users if row[3] in ("ADMIN", "LAWYER")] or internal
    return _People(internal=internal, lawyers=lawyers, approvers=approvers)


class Generator:
    """Generates every table's rows for one scale, seed and day."""

    def __init__(self, scale: Scale, seed: int, now: dt.datetime, today: dt.date) -> None:
        self.scale = scale
        self.rng = random.Random(seed)
        self.now_text = format_utc(now)
        self.today = today
        self.days = _Days(today)
        self.users = _users(self.rng, scale, self.now_text)
        self.people = _people(self.users)
        self.teams = [
            (team_id, f"Team {name}", self.rng.choice(self.people.lawyers))
            for team_id, name in enumerate(
                ("Litigation", "Corporate", "Arbitration", "Criminal", "Property", "Tax", "Labour", "IP")
                * (scale.teams // 8 + 1),
                1,
            )
        ][: scale.teams]
        self.task_id = 0
        self.subtask_id = 0

    def team_members(self) -> list[tuple]:
        members = set()
        for team_id, _, lead_id in self.teams:
            members.add((team_id, lead_id))
            for _ in range(max(3, len(self.people.internal) // max(1, len(self.teams)))):
                members.add((team_id, self.rng.choice(self.people.internal)))
        return sorted(members)

    def case_rows(self, case_id: int) -> dict[str, list[tuple]]:
        """Return one case and everything hanging from it, by table."""
        rng, days = self.rng, self.days
        filed_offset = -int(rng.random() * 3000) - 30
        filed = self.today + dt.timedelta(days=filed_offset)
        case_number, cnr, (court_name, _) = _case_number_and_cnr(rng, case_id, filed)
        draw = rng.random()
        status = (
            "CLOSED"
            if draw < 0.6
            else "ARCHIVED"
            if draw < 0.72
            else "OPEN"
            if draw < 0.86
            else "IN_PROGRESS"
            if draw < 0.96
            else "ON_HOLD"
        )
        is_open = status in ("OPEN", "IN_PROGRESS", "ON_HOLD")
        priority = _pick(rng, PRIORITIES)
        confidential = 1 if rng.random() < 0.08 else 0
        lawyer_id = rng.choice(self.people.lawyers)
        team_id = self.teams[int(rng.random() * len(self.teams))][0]
        expected = (
            days.at(int(rng.random() * 240) - 60)
            if is_open
            else days.at(max(filed_offset + 60, -int(rng.random() * 900) - 1))
        )
        client = f"{_pick(rng, CLIENT_WORDS)} {_pick(rng, CLIENT_SUFFIXES)}"
        title = f"{client} v. {_pick(rng, CLIENT_WORDS)} {_pick(rng, CLIENT_SUFFIXES)}"
        rows: dict[str, list[tuple]] = {
            name: [] for name in ("cases", "tasks", "subtasks", "hearings", "orders", "documents", "worklogs")
        }
        rows["cases"].append(
            (
                case_id,
                case_number,
                cnr,
                title,
                client,
                f"{_pick(rng, CASE_TYPES)} concerning {client}",
                court_name,
                _pick(rng, CASE_TYPES),
                status,
                priority,
                confidential,
                lawyer_id,
                team_id,
                days.at(filed_offset),
                expected,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                self.now_text,
                self.now_text,
            )
        )
        self._tasks(rows, case_id, is_open, filed_offset)
        self._hearings(rows, case_id, is_open, filed_offset, lawyer_id)
        self._orders(rows, case_id, is_open, lawyer_id)
        self._documents(rows, case_id, is_open, lawyer_id)
        self._worklogs(rows, case_id)
        return rows

    def _tasks(self, rows: dict[str, list[tuple]], case_id: int, is_open: bool, filed_offset: int) -> None:
        rng, days, internal = self.rng, self.days, self.people.internal
        for _ in range(self.scale.tasks_per_case):
            self.task_id += 1
            task_open = rng.random() < 0.5 if self.scale.busy else is_open and rng.random() < 0.2
            if task_open:
                status = _pick(rng, ("TODO", "TODO", "IN_PROGRESS", "BLOCKED"))
                spread = (731, 365) if self.scale.busy else (105, 45)
                due = days.at(int(rng.random() * spread[0]) - spread[1]) if rng.random() < 0.93 else None
                completed = None
            else:
                status = "DONE" if rng.random() < 0.92 else "CANCELLED"
                due_offset = filed_offset + int(rng.random() * max(1, -filed_offset - 1))
                due = days.at(due_offset)
                completed = f"{due}T10:00:00.000Z"
            # Squaring the draw skews the work towards some people, as in a real firm.
            assignee = None if rng.random() < 0.05 else internal[int(rng.random() ** 2 * len(internal))]
            priority = _pick(rng, PRIORITIES)
            rows["tasks"].append(
                (
                    self.task_id,
                    case_id,
                    f"{_pick(rng, TASK_VERBS)} {_pick(rng, TASK_OBJECTS)}",
                    _pick(rng, CATEGORIES),
                    status,
                    priority,
                    assignee,
                    due,
                    completed,
                    self.now_text,
                    self.now_text,
                )
            )
            if rng.random() < 0.5:
                self.subtask_id += 1
                sub_open = rng.random() < 0.5 if self.scale.busy else task_open and rng.random() < 0.7
                sub_status = _pick(rng, ("TODO", "IN_PROGRESS")) if sub_open else "DONE"
                sub_due = days.at(int(rng.random() * 731) - 365) if self.scale.busy and sub_open else due
                rows["subtasks"].append(
                    (
                        self.subtask_id,
                        self.task_id,
                        f"Check {_pick(rng, TASK_OBJECTS)}",
                        sub_status,
                        internal[int(rng.random() * len(internal))],
                        sub_due,
                    )
                )

    def _hearings(
        self, rows: dict[str, list[tuple]], case_id: int, is_open: bool, filed_offset: int, lawyer_id: int
    ) -> None:
        rng, days = self.rng, self.days
        offsets = sorted({filed_offset + 20 + int(rng.random() * max(1, -filed_offset - 20)) for _ in range(2)})
        for offset in offsets:
            status = "SCHEDULED" if is_open and rng.random() < 0.05 else _pick(rng, ("HELD", "HELD", "ADJOURNED"))
            rows["hearings"].append(
                (
                    case_id,
                    days.at(offset),
                    _pick(rng, HEARING_PURPOSES),
                    str(rng.randrange(1, 40)),
                    None,
                    status,
                    "Adjourned" if status == "ADJOURNED" else None,
                    lawyer_id,
                    "MANUAL",
                )
            )
        if is_open:
            rows["hearings"].append(
                (
                    case_id,
                    days.at(1 + int(rng.random() * 60)),
                    _pick(rng, HEARING_PURPOSES),
                    str(rng.randrange(1, 40)),
                    None,
                    "SCHEDULED",
                    None,
                    lawyer_id if rng.random() < 0.9 else None,
                    "MANUAL",
                )
            )

    def _orders(self, rows: dict[str, list[tuple]], case_id: int, is_open: bool, lawyer_id: int) -> None:
        rng, days = self.rng, self.days
        for number in range(1, 1 + int(rng.random() * 3)):
            pending = is_open and rng.random() < 0.25
            rows["orders"].append(
                (
                    case_id,
                    days.at(-int(rng.random() * 700) - 1),
                    str(number),
                    "INTERIM",
                    "Interim directions issued",
                    None,
                    "PENDING_REVIEW" if pending else "REVIEWED",
                    lawyer_id,
                    "MANUAL",
                )
            )
        if not is_open and rng.random() < 0.6:
            rows["orders"].append(
                (
                    case_id,
                    days.at(-int(rng.random() * 900) - 1),
                    "F1",
                    "FINAL",
                    "Suit decreed",
                    None,
                    "REVIEWED",
                    lawyer_id,
                    "MANUAL",
                )
            )

    def _documents(self, rows: dict[str, list[tuple]], case_id: int, is_open: bool, lawyer_id: int) -> None:
        rng, days, internal = self.rng, self.days, self.people.internal
        for _ in range(3):
            draw = rng.random()
            if is_open and draw < 0.12:
                status, due = "DRAFT", days.at(int(rng.random() * 60) - 15)
            elif is_open and draw < 0.22:
                status, due = "PENDING_REVIEW", days.at(int(rng.random() * 40) - 10)
            else:
                status, due = _pick(rng, ("APPROVED", "FILED", "FILED")), days.at(-int(rng.random() * 1500) - 1)
            rows["documents"].append(
                (
                    case_id,
                    f"{_pick(rng, DOCUMENT_KINDS).title()} {case_id}",
                    _pick(rng, DOCUMENT_KINDS),
                    status,
                    internal[int(rng.random() * len(internal))],
                    lawyer_id,
                    due,
                )
            )

    def _worklogs(self, rows: dict[str, list[tuple]], case_id: int) -> None:
        rng, days, internal, approvers = self.rng, self.days, self.people.internal, self.people.approvers
        for _ in range(5):
            draw = rng.random()
            status = (
                "DRAFT" if draw < 0.03 else "SUBMITTED" if draw < 0.07 else "REJECTED" if draw < 0.09 else "APPROVED"
            )
            offset = -int(rng.random() * 20) if status in ("DRAFT", "SUBMITTED") else -int(rng.random() * 2000) - 1
            rows["worklogs"].append(
                (
                    internal[int(rng.random() * len(internal))],
                    case_id,
                    days.at(offset),
                    round(0.5 + rng.random() * 6, 1),
                    "Research and drafting",
                    status,
                    approvers[int(rng.random() * len(approvers))],
                )
            )

    def leave_requests(self) -> list[tuple]:
        rng, days, approvers = self.rng, self.days, self.people.approvers
        rows = []
        for user_id in self.people.internal:
            for _ in range(10):
                pending = rng.random() < 0.05
                start = int(rng.random() * 40) - 5 if pending else -int(rng.random() * 1500) - 1
                rows.append(
                    (
                        user_id,
                        days.at(start),
                        days.at(start + 1 + int(rng.random() * 4)),
                        "Personal",
                        "PENDING" if pending else _pick(rng, ("APPROVED", "APPROVED", "REJECTED")),
                        rng.choice(approvers),
                    )
                )
        return rows

    def audit_logs(self, count: int) -> Iterator[tuple]:
        """Yield count audit rows, spread over the last 90 days (a generator: the busy scale has 2M)."""
        rng = self.rng
        for _ in range(count):
            moment = dt.datetime.combine(self.today, dt.time(12), dt.UTC) - dt.timedelta(
                minutes=int(rng.random() * 60 * 24 * 90)
            )
            yield (
                "CASE_UPDATED",
                "CASE",
                rng.randrange(1, self.scale.cases + 1),
                None,
                "LOW",
                "Case details edited",
                "{}",
                None,
                rng.choice(self.people.internal),
                format_utc(moment),
            )


INSERTS = {
    "users": "INSERT INTO users (id, name, email, role, is_active, phone, password_hash, api_token, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
    "teams": "INSERT INTO teams (id, name, lead_id) VALUES (?,?,?)",
    "team_members": "INSERT INTO team_members (team_id, user_id) VALUES (?,?)",
    "cases": "INSERT INTO cases (id, case_number, cnr, title, client_name, description, court_name, case_type, status, priority, is_confidential, lawyer_id, team_id, filed_on, expected_completion_date, next_hearing_date, ecourts_status, ecourts_stage, court_no, judge, last_synced_at, sync_error, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    "tasks": "INSERT INTO tasks (id, case_id, title, category, status, priority, assignee_id, due_date, completed_at, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
    "subtasks": "INSERT INTO subtasks (id, task_id, title, status, assignee_id, due_date) VALUES (?,?,?,?,?,?)",
    "hearings": "INSERT INTO hearings (case_id, hearing_date, purpose, court_no, judge, status, outcome, attendee_id, source) VALUES (?,?,?,?,?,?,?,?,?)",
    "orders": "INSERT INTO orders (case_id, order_date, order_no, kind, summary, document_url, review_status, reviewer_id, source) VALUES (?,?,?,?,?,?,?,?,?)",
    "documents": "INSERT INTO documents (case_id, title, kind, status, owner_id, reviewer_id, due_date) VALUES (?,?,?,?,?,?,?)",
    "worklogs": "INSERT INTO worklogs (user_id, case_id, work_date, hours, description, status, approver_id) VALUES (?,?,?,?,?,?,?)",
    "leave_requests": "INSERT INTO leave_requests (user_id, start_date, end_date, reason, status, approver_id) VALUES (?,?,?,?,?,?)",
    "audit_logs": "INSERT INTO audit_logs (action, entity_type, entity_id, entity_name, severity, description, details, error_message, user_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
}


def _case_batches(generator: Generator) -> Iterator[tuple[int, dict[str, list[tuple]]]]:
    """Yield (cases done so far, rows by table) every BATCH // tasks_per_case cases."""
    batch: dict[str, list[tuple]] = {}
    per_batch = max(1, BATCH // generator.scale.tasks_per_case)
    for case_id in range(1, generator.scale.cases + 1):
        for table, rows in generator.case_rows(case_id).items():
            batch.setdefault(table, []).extend(rows)
        if case_id % per_batch == 0 or case_id == generator.scale.cases:
            yield case_id, batch
            batch = {}


def seed_database(
    database: sqlite_utils.Database,
    scale_name: str,
    seed: int,
    now: dt.datetime,
    today: dt.date,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Fill an empty, migrated database with the given scale's data.

    Return the row count per table. Raise CasejobsError if it already holds
    users (seeding never mixes with real data). The whole fill is one
    transaction: a seed that dies leaves the database empty.
    """
    if database.conn.execute("SELECT EXISTS (SELECT 1 FROM users)").fetchone()[0]:
        raise CasejobsError("the database already holds data; seed only a new, empty database")
    generator = Generator(SCALES[scale_name], seed, now, today)
    connection = database.conn
    counts: dict[str, int] = {}

    def insert(table: str, rows: list[tuple]) -> None:
        connection.executemany(INSERTS[table], rows)
        counts[table] = counts.get(table, 0) + len(rows)

    with write_transaction(database):
        insert("users", generator.users)
        insert("teams", generator.teams)
        insert("team_members", generator.team_members())
        done = 0
        for cases_done, batch in _case_batches(generator):
            for table, rows in batch.items():
                insert(table, rows)
            if progress:
                progress(cases_done - done)
            done = cases_done
        insert("leave_requests", generator.leave_requests())
        audit_rows = generator.audit_logs(max(50, int(generator.scale.cases * generator.scale.audit_per_case)))
        while batch_of_audit_rows := list(itertools.islice(audit_rows, BATCH)):
            insert("audit_logs", batch_of_audit_rows)
    connection.execute("ANALYZE")
    return counts
