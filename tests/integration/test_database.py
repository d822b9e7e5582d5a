"""The database: forward-only migrations on user_version, WAL, and the deterministic seed."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from lib.clock import parse_frozen_now, today_ist
from lib.db import connect, migrate, schema_version
from lib.errors import CasejobsError
from lib.schema import SCHEMA_VERSION
from lib.seed import seed_database
from tests.conftest import run_script

NOW = parse_frozen_now("2026-11-25T12:00:00+05:30")


def seeded(path: Path, seed: int = 1) -> Path:
    database = connect(path, create=True)
    migrate(database, path)
    seed_database(database, "small", seed, NOW, today_ist(NOW))
    database.close()
    return path


def content_digest(path: Path) -> str:
    connection = sqlite3.connect(path)
    digest = hashlib.sha256("\n".join(connection.iterdump()).encode()).hexdigest()
    connection.close()
    return digest


def test_init_creates_then_is_idempotent(home: Path) -> None:
    first = run_script("jobctl", "db", "init", home=home)
    second = run_script("jobctl", "db", "init", home=home)

    assert first.returncode == second.returncode == 0
    assert "created" in first.stdout and "already at schema version" in second.stdout
    connection = sqlite3.connect(home / "casejobs.db")
    assert connection.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_migrations_go_forward_one_step_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    database = connect(path, create=True)
    database.conn.execute("PRAGMA user_version = 1")  # as if only the tables existed
    from lib.schema import MIGRATIONS

    for statement in MIGRATIONS[0].split(";"):
        if statement.strip():
            database.conn.execute(statement)

    assert migrate(database, path) == list(range(2, SCHEMA_VERSION + 1))
    assert schema_version(database) == SCHEMA_VERSION
    assert migrate(database, path) == []
    indexes = {row[0] for row in database.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "tasks_pending_by_assignee" in indexes


def test_the_same_seed_and_day_give_the_same_database(tmp_path: Path) -> None:
    assert content_digest(seeded(tmp_path / "a.db")) == content_digest(seeded(tmp_path / "b.db"))
    assert content_digest(seeded(tmp_path / "c.db", seed=2)) != content_digest(tmp_path / "a.db")


def test_the_seed_is_shaped_like_a_firms_history(tmp_path: Path) -> None:
    connection = sqlite3.connect(seeded(tmp_path / "demo.db"))

    def one(sql: str) -> int:
        return connection.execute(sql).fetchone()[0]

    assert one("SELECT count(*) FROM users") == 25
    assert one("SELECT count(*) FROM cases") == 500
    assert one("SELECT count(*) FROM users WHERE is_active = 0") > 0
    assert one("SELECT count(*) FROM users WHERE role IN ('CLIENT', 'EXTERNAL')") > 0
    assert one("SELECT count(*) FROM cases WHERE is_confidential = 1") > 0
    assert one("SELECT count(*) FROM cases WHERE cnr GLOB '[A-Z][A-Z][A-Z][A-Z][0-9]*' AND length(cnr) = 16") > 100
    assert one("SELECT count(*) FROM cases WHERE cnr IS NOT NULL AND length(cnr) != 16") > 0
    open_tasks = one("SELECT count(*) FROM tasks WHERE status IN ('TODO', 'IN_PROGRESS', 'BLOCKED')")
    assert 0 < open_tasks < one("SELECT count(*) FROM tasks") / 4  # a minority open
    open_due = "status IN ('TODO', 'IN_PROGRESS', 'BLOCKED') AND due_date"
    assert one(f"SELECT count(*) FROM tasks WHERE {open_due} < '2026-11-25'") > 0
    assert one(f"SELECT count(*) FROM tasks WHERE {open_due} = '2026-11-25'") > 0
    assert one(f"SELECT count(*) FROM tasks WHERE {open_due} BETWEEN '2026-11-26' AND '2026-11-29'") > 0
    assert one(f"SELECT count(*) FROM tasks WHERE {open_due} BETWEEN '2026-11-30' AND '2026-12-31'") > 0  # later on
    assert one("SELECT count(*) FROM tasks WHERE assignee_id IS NULL") > 0
    assert one("SELECT count(*) FROM hearings WHERE status = 'SCHEDULED'") > 0
    assert one("SELECT count(*) FROM orders WHERE review_status = 'PENDING_REVIEW'") > 0


def test_seeding_refuses_a_database_that_holds_data(tmp_path: Path) -> None:
    path = seeded(tmp_path / "demo.db")
    database = connect(path)
    with pytest.raises(CasejobsError, match="already holds data"):
        seed_database(database, "small", 1, NOW, today_ist(NOW))


def test_seed_through_jobctl(home: Path) -> None:
    result = run_script("jobctl", "db", "seed", "--scale", "small", "--seed", "7", home=home)
    assert result.returncode == 0, result.stderr
    assert "500 cases" in result.stdout
    again = run_script("jobctl", "db", "seed", home=home)
    assert again.returncode == 1 and "already holds data" in again.stderr
