"""The database: forward-only migrations on user_version, WAL, and the deterministic seed."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from lib.clock import parse_frozen_now, today_ist
from lib.db import connect
from lib.errors import CasejobsError
from lib.migration import migrate_all
from lib.schema import SCHEMA_VERSION
from lib.seed import seed_database
from tests.conftest import run_script

NOW = parse_frozen_now("2026-11-25T12:00:00+05:30")


def seeded(path: Path, seed: int = 1) -> Path:
    database = connect(path, create=True)
    migrate_all(database)
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


def test_migrations_go_forward_in_one_transaction(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    database = connect(path, create=True)
    database.conn.execute("PRAGMA user_version = 1")  # as if only the tables existed
    from lib.schema import MIGRATIONS

    for statement in MIGRATIONS[0].split(";"):
        if statement.strip():
            database.conn.execute(statement)

    assert migrate_all(database) == SCHEMA_VERSION
    assert database.conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert migrate_all(database) == SCHEMA_VERSION
    indexes = {row[0] for row in database.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "tasks_pending_by_assignee" in indexes


def foreign_database(path: Path) -> Path:
    """The application's tables under the same names, with other columns (another product's schema)."""
    connection = sqlite3.connect(path)
    connection.executescript(
        """
        CREATE TABLE users (id INTEGER PRIMARY KEY, full_name TEXT, mail TEXT);
        CREATE TABLE cases (id INTEGER PRIMARY KEY, number TEXT, owner INTEGER);
        CREATE TABLE tasks (id TEXT PRIMARY KEY, case_id TEXT, title TEXT, category TEXT, status TEXT,
                            priority TEXT, assignee_id TEXT, due_date INTEGER, completed_at TEXT, created_at TEXT,
                            updated_at TEXT);
        INSERT INTO users (full_name, mail) VALUES ('Asha', 'asha@firm.example');
        """
    )
    connection.commit()
    connection.close()
    return path


def test_init_refuses_a_foreign_schema_and_changes_not_one_byte(home: Path) -> None:
    path = foreign_database(home / "casejobs.db")
    before = path.read_bytes()

    dry = run_script("jobctl", "db", "init", "--dry-run", home=home)
    result = run_script("jobctl", "db", "init", home=home)

    for outcome in (dry, result):
        assert outcome.returncode == 78, outcome.stderr
        assert len(outcome.stderr.strip().splitlines()) == 1 and "Traceback" not in outcome.stderr
        assert "table users lacks name, email, role" in outcome.stderr
        assert "table cases lacks case_number" in outcome.stderr
        assert "table tasks has incompatible types: id (TEXT, not INTEGER)" in outcome.stderr
        assert "due_date (INTEGER, not TEXT)" in outcome.stderr
    assert path.read_bytes() == before
    assert sorted(item.name for item in home.iterdir()) == ["casejobs.db"]  # no -wal, no -shm, no copy


def test_init_migrates_an_empty_database(home: Path) -> None:
    sqlite3.connect(home / "casejobs.db").close()  # an empty file, as a fresh application leaves it

    result = run_script("jobctl", "db", "init", home=home)

    assert result.returncode == 0, result.stderr
    assert "copied" not in result.stdout  # nothing to keep
    assert sqlite3.connect(home / "casejobs.db").execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_init_copies_an_older_contract_database_first(home: Path) -> None:
    path = home / "casejobs.db"
    connection = sqlite3.connect(path)
    from lib.schema import MIGRATIONS

    connection.executescript(MIGRATIONS[0])
    connection.execute("PRAGMA user_version = 1")
    connection.execute("INSERT INTO users (name, email, role) VALUES ('Asha', 'asha@firm.example', 'LAWYER')")
    connection.commit()
    connection.close()

    dry = run_script("jobctl", "db", "init", "--dry-run", home=home)
    assert dry.returncode == 0 and "would copy" in dry.stdout and "index tasks_pending_by_assignee" in dry.stdout
    assert "would set the schema version from 1 to" in dry.stdout
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (1,)  # the dry run changed nothing

    result = run_script("jobctl", "db", "init", home=home)

    assert result.returncode == 0, result.stderr
    (copy,) = (home / "backups").glob("pre-migration-*.db")
    assert f"copied {path} to {copy} first" in result.stdout
    old = sqlite3.connect(copy)
    assert old.execute("PRAGMA user_version").fetchone() == (1,)
    assert old.execute("SELECT name FROM users").fetchall() == [("Asha",)]
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


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
