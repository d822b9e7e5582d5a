"""Opening the case-management database safely, and keeping its schema current.

Connections use WAL and a busy timeout, so that the desktop application can
keep writing while a job runs; writes take the lock up front (BEGIN
IMMEDIATE) so that a transaction never fails half-way on a lock upgrade.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import queue
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from lib.errors import ConfigError
from lib.schema import MIGRATIONS, SCHEMA_VERSION

if TYPE_CHECKING:
    from lib.settings import Settings

SQLITE_HEADER = b"SQLite format 3\x00"


def _check_is_sqlite(path: Path) -> None:
    """Raise ConfigError naming CASEJOBS_DB unless path is a readable SQLite file."""
    if not path.exists():
        raise ConfigError(f"database {path} (CASEJOBS_DB) does not exist; create it with: bin/jobctl db init")
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as error:
        raise ConfigError(f"database {path} (CASEJOBS_DB) cannot be read: {error.strerror}") from None
    if header and header != SQLITE_HEADER:
        raise ConfigError(f"database {path} (CASEJOBS_DB) is not an SQLite database")


def connect(path: Path, busy_timeout_ms: int = 10_000, create: bool = False) -> sqlite_utils.Database:
    """Given a database path, return an open sqlite_utils.Database in WAL mode.

    Raise ConfigError if the file is missing (unless create), unreadable or not SQLite.
    """
    if not create:
        _check_is_sqlite(path)
    try:
        connection = sqlite3.connect(str(path), timeout=busy_timeout_ms / 1000, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        connection.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as error:
        raise ConfigError(f"database {path} (CASEJOBS_DB) cannot be opened: {error}") from None
    if mode.lower() != "wal":
        raise ConfigError(f"database {path} (CASEJOBS_DB) cannot use WAL mode (got {mode})")
    return sqlite_utils.Database(connection, execute_plugins=False)


def schema_version(database: sqlite_utils.Database) -> int:
    """Return the database's PRAGMA user_version."""
    return database.conn.execute("PRAGMA user_version").fetchone()[0]


def check_schema(database: sqlite_utils.Database, path: Path) -> None:
    """Raise ConfigError unless the database is exactly at the schema this code knows."""
    version = schema_version(database)
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"database {path} has schema version {version}, newer than this casejobs knows "
            f"({SCHEMA_VERSION}); upgrade casejobs"
        )
    if version < SCHEMA_VERSION:
        raise ConfigError(
            f"database {path} has schema version {version}, older than {SCHEMA_VERSION}; "
            "migrate it with: bin/jobctl db init"
        )


def migrate(database: sqlite_utils.Database, path: Path) -> list[int]:
    """Bring the database forward to SCHEMA_VERSION, one transaction per step.

    Return the versions reached (empty when already current). Raise
    ConfigError if the database is newer than this code.
    """
    version = schema_version(database)
    if version > SCHEMA_VERSION:
        check_schema(database, path)
    reached = []
    for step in range(version, SCHEMA_VERSION):
        with write_transaction(database):
            for statement in _statements(MIGRATIONS[step]):
                database.conn.execute(statement)
            database.conn.execute(f"PRAGMA user_version = {step + 1}")
        reached.append(step + 1)
    return reached


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (none of ours holds a ';' in a literal)."""
    return [statement.strip() for statement in script.split(";") if statement.strip()]


@contextlib.contextmanager
def write_transaction(database: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """Run the block in one write transaction: all of it is committed, or none."""
    connection = database.conn
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield database
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


READERS = 2  # the machines we run on have two cores; more readers only queue


@contextlib.contextmanager
def parallel_readers(settings: Settings, readers: int = READERS) -> Iterator[Callable]:
    """Yield run_queries(queries, between): run read-only queries on parallel connections.

    queries is a list of (key, sql, parameters); run_queries yields (key, rows)
    as each finishes, in the order given, and calls between() before each, so
    that a job can stop between two queries (a stop interrupts the rest).
    SQLite releases the GIL while it steps, so two connections use two cores.
    Each reader sees its own snapshot: the figures are as of the moment each
    query ran, a fraction of a second apart.
    """
    connections: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
    opened = []
    for _ in range(readers):
        connection = connect(settings.database_path, settings.get("core.busy_timeout_ms")).conn
        connection.execute("PRAGMA query_only = 1")
        opened.append(connection)
        connections.put(connection)

    def run_one(sql: str, parameters: Any) -> list[tuple]:
        connection = connections.get()
        try:
            return connection.execute(sql, parameters).fetchall()
        finally:
            connections.put(connection)

    def run_queries(
        queries: list[tuple[Any, str, Any]], between: Callable[[], None]
    ) -> Iterator[tuple[Any, list[tuple]]]:
        futures = [(key, pool.submit(run_one, sql, parameters)) for key, sql, parameters in queries]
        try:
            for key, future in futures:
                between()
                yield key, future.result()
        except BaseException:
            for connection in opened:
                connection.interrupt()
            raise

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=readers, thread_name_prefix="reader")
    try:
        yield run_queries
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for connection in opened:
            connection.close()
