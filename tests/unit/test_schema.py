"""The database contract of data-model.md: what contract_problems() says of an empty, a partial and a migrated
database."""

from __future__ import annotations

import sqlite3

import sqlite_utils

from lib.migration import migrate_all
from lib.schema import CONTRACT, MIGRATIONS, SCHEMA_VERSION, contract_problems


def test_an_empty_database_is_missing_every_table_of_the_contract() -> None:
    connection = sqlite3.connect(":memory:")
    assert contract_problems(connection) == [f"table {table} is missing" for table in CONTRACT]


def test_a_migrated_database_meets_the_contract() -> None:
    database = sqlite_utils.Database(memory=True)
    assert migrate_all(database) == SCHEMA_VERSION == len(MIGRATIONS)
    assert contract_problems(database.conn) == []
    assert database.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_table_short_of_columns_is_named_with_the_columns_it_lacks_and_extra_ones_are_fine() -> None:
    database = sqlite_utils.Database(memory=True)
    migrate_all(database)
    connection = database.conn
    connection.execute("ALTER TABLE teams RENAME TO old_teams")
    connection.execute("CREATE TABLE teams (id INTEGER PRIMARY KEY, title TEXT, colour TEXT)")
    connection.execute("ALTER TABLE users ADD COLUMN nickname TEXT")
    connection.execute("DROP TABLE audit_logs")
    assert contract_problems(connection) == ["table teams lacks name, lead_id", "table audit_logs is missing"]


def test_every_migration_can_run_twice_without_harm() -> None:
    connection = sqlite3.connect(":memory:")
    for script in MIGRATIONS:
        connection.executescript(script)
        connection.executescript(script)  # IF NOT EXISTS everywhere: a step a crash interrupted can run again
    assert contract_problems(connection) == []
