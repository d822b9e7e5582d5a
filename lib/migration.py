"""Bringing a database to the current schema, safely, on the firm's own data.

inspect() reads the database without writing a byte (a read-only
connection): its version, its tables, what the migrations would create, and
where an existing table breaks the contract of data-model.md (a missing
column, a type that cannot hold what we store). A database with such a
table is refused whole. Otherwise the migrations run in one transaction
(all of them or none), after a consistent copy of a non-empty database has
been written next to the backups.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from lib.db import write_transaction
from lib.schema import CONTRACT, MIGRATIONS, SCHEMA_VERSION

CREATED = re.compile(r"CREATE\s+(TABLE|INDEX)\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.IGNORECASE)


def affinity(declared: str) -> str:
    """Return SQLite's type affinity of a declared column type (the rules of section 3.1 of its docs)."""
    text = (declared or "").upper()
    if "INT" in text:
        return "INTEGER"
    if any(word in text for word in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in text or not text:
        return "BLOB"
    if any(word in text for word in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


# What our values need: INTEGER columns take numbers; TEXT columns (dates, names) must not be turned into numbers.
COMPATIBLE = {
    "INTEGER": {"INTEGER", "NUMERIC", "BLOB"},
    "REAL": {"REAL", "NUMERIC", "INTEGER", "BLOB"},
    "TEXT": {"TEXT", "BLOB"},
}


def _expected_types() -> dict[str, dict[str, str]]:
    """Return the affinity of every contract column, as our own tables declare it."""
    connection = sqlite3.connect(":memory:")
    try:
        connection.executescript(MIGRATIONS[0])
        return {
            table: {row[1]: affinity(row[2]) for row in connection.execute(f'PRAGMA table_info("{table}")')}
            for table in CONTRACT
        }
    finally:
        connection.close()


@dataclass
class Inspection:
    """What db init found, before it changes anything."""

    path: Path
    exists: bool
    version: int = 0
    tables: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why the database is refused
    to_create: list[str] = field(default_factory=list)  # "table users", "index cases_pending_by_lawyer"

    @property
    def empty(self) -> bool:
        return not self.tables

    @property
    def current(self) -> bool:
        return self.version == SCHEMA_VERSION and not self.to_create


def _table_problems(connection: sqlite3.Connection, present: set[str]) -> list[str]:
    expected = _expected_types()
    problems = []
    for table, columns in CONTRACT.items():
        if table not in present:
            continue
        declared = {row[1]: row[2] for row in connection.execute(f'PRAGMA table_info("{table}")')}
        missing = [column for column in columns if column not in declared]
        if missing:
            problems.append(f"table {table} lacks {', '.join(missing)}")
        clashing = [
            f"{column} ({declared[column] or 'no type'}, not {expected[table][column]})"
            for column in columns
            if column in declared
            and affinity(declared[column]) not in COMPATIBLE.get(expected[table][column], {"BLOB"})
        ]
        if clashing:
            problems.append(f"table {table} has incompatible types: {', '.join(clashing)}")
    return problems


def inspect(path: Path) -> Inspection:
    """Return what the database holds and what migrating it would do; never writes a byte.

    Raise sqlite3.DatabaseError if the file is not a database.
    """
    if not path.exists():
        return Inspection(path, exists=False, to_create=_objects_created(set(), set()))
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        objects = connection.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall()
        # SQLite's names are not case-sensitive, and an application may stand a view in for a table.
        tables = {name.lower() for kind, name in objects if kind in ("table", "view")}
        indexes = {name.lower() for kind, name in objects if kind == "index"}
        problems = _table_problems(connection, tables)
    finally:
        connection.close()
    if version > SCHEMA_VERSION:
        problems.insert(0, f"schema version {version} is newer than this casejobs knows ({SCHEMA_VERSION})")
    return Inspection(path, True, version, sorted(tables), problems, _objects_created(tables, indexes))


def _objects_created(tables: set[str], indexes: set[str]) -> list[str]:
    created = []
    for script in MIGRATIONS:
        for kind, name in CREATED.findall(script):
            if name not in (tables if kind.upper() == "TABLE" else indexes):
                created.append(f"{kind.lower()} {name}")
    return created


def copy_before_migrating(source: sqlite3.Connection, folder: Path, now: dt.datetime) -> Path:
    """Write a consistent copy of the database (SQLite's online backup) into folder; return its path."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    for number in range(1, 1000):
        target = folder / f"pre-migration-{stamp}{'' if number == 1 else f'-{number}'}.db"
        try:
            # Created 0600 before SQLite opens it (the copy holds every secret column, whatever the
            # umask), and never over an earlier copy made in the same second.
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            break
        except FileExistsError:
            continue
    os.chmod(target, 0o600)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
    return target


def migrate_all(database: sqlite_utils.Database) -> int:
    """Run every migration the database has not had, in one transaction; return the version reached."""
    connection = database.conn
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        return version
    with write_transaction(database):
        for step in range(version, SCHEMA_VERSION):
            for statement in _statements(MIGRATIONS[step]):
                connection.execute(statement)
        # Then every CREATE … IF NOT EXISTS of every migration again: it puts back a table or index
        # someone dropped from a database already at this version, and touches nothing that is there.
        for script in MIGRATIONS:
            for statement in _statements(script):
                if CREATED.match(statement.lstrip()):
                    connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return SCHEMA_VERSION


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (none of ours holds a ';' in a literal)."""
    return [statement.strip() for statement in script.split(";") if statement.strip()]
