"""The database contract of data-model.md, as forward-only migrations.

MIGRATIONS[n] takes a database from user_version n to n + 1. Every statement
is idempotent (IF NOT EXISTS), so re-running a step that a crash interrupted
is safe; each step runs in one transaction together with its version bump.
"""

from __future__ import annotations

import sqlite3

from lib.vocabulary import (
    DRAFT,
    OPEN_TASK,
    PENDING_CASE,
    PENDING_LEAVE,
    PENDING_REVIEW,
    ROLES,
    SCHEDULED_HEARING,
    SLA_CASE,
    SUBMITTED_WORKLOG,
    equals,
    words,
)

_TABLES = f"""
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN {words(ROLES)}),
    is_active INTEGER NOT NULL DEFAULT 1,
    phone TEXT,
    password_hash TEXT,
    api_token TEXT,
    created_at TEXT,
    updated_at TEXT
);
CREATE TABLE IF NOT EXISTS teams (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    lead_id INTEGER REFERENCES users(id)
);
CREATE TABLE IF NOT EXISTS team_members (
    team_id INTEGER NOT NULL REFERENCES teams(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    PRIMARY KEY (team_id, user_id)
);
CREATE TABLE IF NOT EXISTS cases (
    id INTEGER PRIMARY KEY,
    case_number TEXT NOT NULL UNIQUE,
    cnr TEXT,
    title TEXT,
    client_name TEXT,
    description TEXT,
    court_name TEXT,
    case_type TEXT,
    status TEXT NOT NULL,
    priority TEXT,
    is_confidential INTEGER NOT NULL DEFAULT 0,
    lawyer_id INTEGER REFERENCES users(id),
    team_id INTEGER REFERENCES teams(id),
    filed_on TEXT,
    expected_completion_date TEXT,
    next_hearing_date TEXT,
    ecourts_status TEXT,
    ecourts_stage TEXT,
    court_no TEXT,
    judge TEXT,
    last_synced_at TEXT,
    sync_error TEXT,
    created_at TEXT,
    updated_at TEXT
);
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY,
    case_id INTEGER REFERENCES cases(id),
    title TEXT,
    category TEXT,
    status TEXT NOT NULL,
    priority TEXT,
    assignee_id INTEGER REFERENCES users(id),
    due_date TEXT,
    completed_at TEXT,
    created_at TEXT,
    updated_at TEXT
);
CREATE TABLE IF NOT EXISTS subtasks (
    id INTEGER PRIMARY KEY,
    task_id INTEGER NOT NULL REFERENCES tasks(id),
    title TEXT,
    status TEXT NOT NULL,
    assignee_id INTEGER REFERENCES users(id),
    due_date TEXT
);
CREATE TABLE IF NOT EXISTS hearings (
    id INTEGER PRIMARY KEY,
    case_id INTEGER NOT NULL REFERENCES cases(id),
    hearing_date TEXT NOT NULL,
    purpose TEXT,
    court_no TEXT,
    judge TEXT,
    status TEXT NOT NULL,
    outcome TEXT,
    attendee_id INTEGER REFERENCES users(id),
    source TEXT NOT NULL DEFAULT 'MANUAL',
    UNIQUE (case_id, hearing_date)
);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    case_id INTEGER NOT NULL REFERENCES cases(id),
    order_date TEXT,
    order_no TEXT NOT NULL,
    kind TEXT NOT NULL,
    summary TEXT,
    document_url TEXT,
    review_status TEXT,
    reviewer_id INTEGER REFERENCES users(id),
    source TEXT NOT NULL DEFAULT 'MANUAL',
    UNIQUE (case_id, kind, order_no)
);
CREATE TABLE IF NOT EXISTS worklogs (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    case_id INTEGER REFERENCES cases(id),
    work_date TEXT,
    hours REAL,
    description TEXT,
    status TEXT NOT NULL,
    approver_id INTEGER REFERENCES users(id)
);
CREATE TABLE IF NOT EXISTS leave_requests (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    start_date TEXT,
    end_date TEXT,
    reason TEXT,
    status TEXT NOT NULL,
    approver_id INTEGER REFERENCES users(id)
);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    case_id INTEGER REFERENCES cases(id),
    title TEXT,
    kind TEXT,
    status TEXT NOT NULL,
    owner_id INTEGER REFERENCES users(id),
    reviewer_id INTEGER REFERENCES users(id),
    due_date TEXT
);
CREATE TABLE IF NOT EXISTS audit_logs (
    id INTEGER PRIMARY KEY,
    action TEXT NOT NULL,
    entity_type TEXT,
    entity_id INTEGER,
    entity_name TEXT,
    severity TEXT NOT NULL,
    description TEXT,
    details TEXT,
    error_message TEXT,
    user_id INTEGER REFERENCES users(id),
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL,
    title TEXT,
    body TEXT,
    entity_type TEXT,
    entity_id INTEGER,
    dedupe_key TEXT UNIQUE,
    created_at TEXT NOT NULL,
    read_at TEXT,
    email_status TEXT
);
CREATE TABLE IF NOT EXISTS user_pending_summaries (
    user_id INTEGER PRIMARY KEY REFERENCES users(id),
    cases INTEGER NOT NULL DEFAULT 0,
    tasks INTEGER NOT NULL DEFAULT 0,
    subtasks INTEGER NOT NULL DEFAULT 0,
    hearings INTEGER NOT NULL DEFAULT 0,
    orders INTEGER NOT NULL DEFAULT 0,
    worklogs INTEGER NOT NULL DEFAULT 0,
    leave_requests INTEGER NOT NULL DEFAULT 0,
    documents INTEGER NOT NULL DEFAULT 0,
    team INTEGER NOT NULL DEFAULT 0,
    tasks_by_category TEXT NOT NULL DEFAULT '{{}}',
    total INTEGER NOT NULL DEFAULT 0,
    overdue INTEGER NOT NULL DEFAULT 0,
    due_today INTEGER NOT NULL DEFAULT 0,
    due_this_week INTEGER NOT NULL DEFAULT 0,
    due_this_month INTEGER NOT NULL DEFAULT 0,
    urgent INTEGER NOT NULL DEFAULT 0,
    by_priority TEXT NOT NULL DEFAULT '{{}}',
    workload_level TEXT NOT NULL DEFAULT 'LOW',
    refreshed_at TEXT NOT NULL
);
"""

# Partial, covering indexes over the pending items only: the refresh reads
# the few open rows of each table straight from these, never the long
# finished history, and never touches the table rows themselves.
_PENDING_INDEXES = f"""
CREATE INDEX IF NOT EXISTS cases_pending_by_lawyer
    ON cases (lawyer_id, priority, expected_completion_date)
    WHERE status IN {PENDING_CASE};
CREATE INDEX IF NOT EXISTS tasks_pending_by_assignee
    ON tasks (assignee_id, priority, category, due_date)
    WHERE status IN {OPEN_TASK} AND assignee_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_pending_unassigned
    ON tasks (case_id, priority, due_date)
    WHERE status IN {OPEN_TASK} AND assignee_id IS NULL;
CREATE INDEX IF NOT EXISTS subtasks_pending_by_task
    ON subtasks (task_id, assignee_id, due_date)
    WHERE status IN {OPEN_TASK} AND assignee_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS hearings_pending_by_attendee
    ON hearings (attendee_id, hearing_date) WHERE {equals("status", SCHEDULED_HEARING)};
CREATE INDEX IF NOT EXISTS orders_pending_by_reviewer
    ON orders (reviewer_id) WHERE {equals("review_status", PENDING_REVIEW)};
CREATE INDEX IF NOT EXISTS worklogs_draft_by_user
    ON worklogs (user_id) WHERE {equals("status", DRAFT)};
CREATE INDEX IF NOT EXISTS worklogs_submitted_by_approver
    ON worklogs (approver_id) WHERE {equals("status", SUBMITTED_WORKLOG)};
CREATE INDEX IF NOT EXISTS leave_requests_pending_by_approver
    ON leave_requests (approver_id, start_date) WHERE {equals("status", PENDING_LEAVE)};
CREATE INDEX IF NOT EXISTS documents_review_by_reviewer
    ON documents (reviewer_id, due_date) WHERE {equals("status", PENDING_REVIEW)};
CREATE INDEX IF NOT EXISTS documents_draft_by_owner
    ON documents (owner_id, due_date) WHERE {equals("status", DRAFT)};
CREATE INDEX IF NOT EXISTS tasks_by_case ON tasks (case_id);
CREATE INDEX IF NOT EXISTS subtasks_by_task ON subtasks (task_id);
CREATE INDEX IF NOT EXISTS cases_by_team ON cases (team_id);
CREATE INDEX IF NOT EXISTS audit_logs_by_time ON audit_logs (created_at);
CREATE INDEX IF NOT EXISTS notifications_by_user ON notifications (user_id);
"""

# slaCheck reads open items by due date: the few due up to a few days ahead.
_SLA_INDEXES = f"""
CREATE INDEX IF NOT EXISTS cases_open_by_due
    ON cases (expected_completion_date) WHERE status IN {SLA_CASE};
CREATE INDEX IF NOT EXISTS tasks_open_by_due
    ON tasks (due_date) WHERE status IN {OPEN_TASK};
"""

# slaCheck lists each person's earliest items first: read in due order per assignee, a busy firm's
# half a million open tasks are never sorted, only each person's first few read (issue 12).
_SLA_BY_ASSIGNEE = f"""
CREATE INDEX IF NOT EXISTS tasks_open_by_assignee_due
    ON tasks (assignee_id, due_date) WHERE status IN {OPEN_TASK} AND assignee_id IS NOT NULL;
"""

MIGRATIONS: tuple[str, ...] = (_TABLES, _PENDING_INDEXES, _SLA_INDEXES, _SLA_BY_ASSIGNEE)

SCHEMA_VERSION = len(MIGRATIONS)


# data-model.md's contract: the tables and columns every casejobs database has, whatever else it holds.
CONTRACT: dict[str, tuple[str, ...]] = {
    "users": (
        "id", "name", "email", "role", "is_active", "phone", "password_hash", "api_token", "created_at", "updated_at",
    ),
    "teams": ("id", "name", "lead_id"),
    "team_members": ("team_id", "user_id"),
    "cases": (
        "id", "case_number", "cnr", "title", "client_name", "description", "court_name", "case_type", "status",
        "priority", "is_confidential", "lawyer_id", "team_id", "filed_on", "expected_completion_date",
        "next_hearing_date", "ecourts_status", "ecourts_stage", "court_no", "judge", "last_synced_at", "sync_error",
        "created_at", "updated_at",
    ),
    "tasks": (
        "id", "case_id", "title", "category", "status", "priority", "assignee_id", "due_date", "completed_at",
        "created_at", "updated_at",
    ),
    "subtasks": ("id", "task_id", "title", "status", "assignee_id", "due_date"),
    "hearings": (
        "id", "case_id", "hearing_date", "purpose", "court_no", "judge", "status", "outcome", "attendee_id", "source",
    ),
    "orders": (
        "id", "case_id", "order_date", "order_no", "kind", "summary", "document_url", "review_status", "reviewer_id",
        "source",
    ),
    "worklogs": ("id", "user_id", "case_id", "work_date", "hours", "description", "status", "approver_id"),
    "leave_requests": ("id", "user_id", "start_date", "end_date", "reason", "status", "approver_id"),
    "documents": ("id", "case_id", "title", "kind", "status", "owner_id", "reviewer_id", "due_date"),
    "audit_logs": (
        "id", "action", "entity_type", "entity_id", "entity_name", "severity", "description", "details",
        "error_message", "user_id", "created_at",
    ),
    "notifications": (
        "id", "user_id", "kind", "title", "body", "entity_type", "entity_id", "dedupe_key", "created_at", "read_at",
        "email_status",
    ),
    "user_pending_summaries": (
        "user_id", "cases", "tasks", "subtasks", "hearings", "orders", "worklogs", "leave_requests", "documents",
        "team", "tasks_by_category", "total", "overdue", "due_today", "due_this_week", "due_this_month", "urgent",
        "by_priority", "workload_level", "refreshed_at",
    ),
}  # fmt: skip


def contract_problems(connection: sqlite3.Connection) -> list[str]:
    """Return what a database lacks of the contract, in words (empty when it has all of it).

    Only what exists is read: `sqlite_master` and `PRAGMA table_info`, never a row.
    """
    present = {
        name: {row[1] for row in connection.execute(f'PRAGMA table_info("{name}")')}
        for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    problems = []
    for table, columns in CONTRACT.items():
        if table not in present:
            problems.append(f"table {table} is missing")
            continue
        missing = [column for column in columns if column not in present[table]]
        if missing:
            problems.append(f"table {table} lacks {', '.join(missing)}")
    return problems
