"""db init's look before it leaps: inspect() names what a foreign schema lacks or holds in the wrong type without
writing a byte, SQLite's type affinity rules, and migrate_all's one-way trip to the current version."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from lib.migration import affinity, inspect, migrate_all
from lib.schema import CONTRACT, MIGRATIONS, SCHEMA_VERSION

FOREIGN_SCHEMA = """
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT);
CREATE TABLE cases (
    id INTEGER PRIMARY KEY, case_number TEXT, status TEXT, is_confidential TEXT, expected_completion_date DATE,
    lawyer_id BIGINT, title
);
CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL);
INSERT INTO users (name, email) VALUES ('Asha', 'asha@firm.example');
"""


def foreign_database(path: Path) -> Path:
    connection = sqlite3.connect(path)
    connection.executescript(FOREIGN_SCHEMA)
    connection.close()
    return path


def test_a_foreign_schema_is_refused_naming_each_missing_column_and_incompatible_type(tmp_path: Path) -> None:
    path = foreign_database(tmp_path / "firm.db")
    found = inspect(path)
    missing_user_columns = [column for column in CONTRACT["users"] if column not in ("id", "name", "email")]
    assert found.problems[0] == f"table users lacks {', '.join(missing_user_columns)}"
    assert found.problems[1].startswith("table cases lacks cnr, client_name, description, court_name, case_type, ")
    assert found.problems[2] == (
        "table cases has incompatible types: is_confidential (TEXT, not INTEGER), "
        "expected_completion_date (DATE, not TEXT)"
    )
    assert len(found.problems) == 3  # a BIGINT id, a column without a type and a foreign table are all fine
    assert (found.exists, found.version, found.tables) == (True, 0, ["cases", "invoices", "users"])
    assert "table teams" in found.to_create and "table users" not in found.to_create
    assert not found.current


def test_inspecting_never_writes_a_byte(tmp_path: Path) -> None:
    path = foreign_database(tmp_path / "firm.db")
    before = path.read_bytes()
    inspect(path)
    assert path.read_bytes() == before
    assert sorted(file.name for file in tmp_path.iterdir()) == ["firm.db"]  # no journal, no -wal, no -shm

    missing = tmp_path / "new.db"
    nothing = inspect(missing)
    assert (nothing.exists, nothing.empty, nothing.problems) == (False, True, [])
    assert "table users" in nothing.to_create and "index cases_open_by_due" in nothing.to_create
    assert not missing.exists()


def test_a_migrated_database_is_current_with_nothing_to_create(tmp_path: Path) -> None:
    database = sqlite_utils.Database(tmp_path / "ours.db")
    assert migrate_all(database) == SCHEMA_VERSION
    assert migrate_all(database) == SCHEMA_VERSION  # a second time does nothing
    database.close()
    found = inspect(tmp_path / "ours.db")
    assert (found.problems, found.to_create, found.version, found.current) == ([], [], SCHEMA_VERSION, True)
    assert set(CONTRACT) <= set(found.tables)


def test_a_database_of_a_newer_casejobs_is_refused_first(tmp_path: Path) -> None:
    database = sqlite_utils.Database(tmp_path / "newer.db")
    migrate_all(database)
    database.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    database.close()
    problems = inspect(tmp_path / "newer.db").problems
    assert problems == [f"schema version {SCHEMA_VERSION + 5} is newer than this casejobs knows ({SCHEMA_VERSION})"]


def test_a_file_that_is_not_a_database_raises(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        inspect(path)


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("INTEGER", "INTEGER"),
        ("unsigned big int", "INTEGER"),
        ("FLOATING POINT", "INTEGER"),  # holds INT: the first rule wins
        ("CHARINT", "INTEGER"),
        ("VARCHAR(255)", "TEXT"),
        ("nchar(55)", "TEXT"),
        ("CLOB", "TEXT"),
        ("BLOB", "BLOB"),
        ("", "BLOB"),
        ("DOUBLE PRECISION", "REAL"),
        ("FLOAT", "REAL"),
        ("DECIMAL(10,5)", "NUMERIC"),
        ("BOOLEAN", "NUMERIC"),
        ("DATETIME", "NUMERIC"),
        ("STRING", "NUMERIC"),  # not TEXT: SQLite's own surprise
    ],
)
def test_affinity_follows_sqlites_rules_in_their_order(declared: str, expected: str) -> None:
    assert affinity(declared) == expected


def test_copies_made_in_the_same_second_are_both_kept_and_private(tmp_path: Path) -> None:
    import datetime as dt
    import sqlite3

    from lib.migration import copy_before_migrating

    source = sqlite3.connect(tmp_path / "live.db")
    source.execute("CREATE TABLE t (x)")
    source.commit()
    now = dt.datetime(2026, 11, 30, 4, 0, tzinfo=dt.UTC)

    first = copy_before_migrating(source, tmp_path, now)
    source.execute("INSERT INTO t VALUES (1)")
    source.commit()
    second = copy_before_migrating(source, tmp_path, now)

    assert first.name == "pre-migration-20261130T040000Z.db" and second.name == "pre-migration-20261130T040000Z-2.db"
    assert sqlite3.connect(first).execute("SELECT count(*) FROM t").fetchone() == (0,)  # not overwritten
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in (first, second))


def test_a_table_named_in_other_letters_or_a_view_counts_as_there(tmp_path: Path) -> None:
    from lib.migration import _statements

    path = tmp_path / "app.db"
    connection = sqlite3.connect(path)
    for script in MIGRATIONS:
        for statement in _statements(script):
            connection.execute(statement.replace("IF NOT EXISTS users ", "IF NOT EXISTS Users "))
    connection.execute("DROP TABLE teams")
    connection.execute("CREATE VIEW teams AS SELECT 1 AS id, 'Litigation' AS name, NULL AS lead_id")
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    connection.commit()
    connection.close()

    inspection = inspect(path)

    assert inspection.problems == [], inspection.problems
    assert inspection.to_create == [] and inspection.current  # db init would not copy and "add" it every time
