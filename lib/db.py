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
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlite_utils

from lib.errors import ConfigError, DatabaseBusy
from lib.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from lib.settings import Settings
    from lib.stop import StopFlag

SQLITE_HEADER = b"SQLite format 3\x00"


def check_database_file(path: Path) -> None:
    """Raise ConfigError naming CASEJOBS_DB unless path is a readable SQLite file."""
    if not path.exists():
        raise ConfigError(
            f"database {path} does not exist: set CASEJOBS_DB (or db in the config file) to the application's "
            "database, or check CASEJOBS_HOME (bin/jobctl db init makes an empty one, for a new firm only)"
        )
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as error:
        raise ConfigError(f"database {path} (CASEJOBS_DB) cannot be read: {error.strerror}") from None
    if header and header != SQLITE_HEADER:
        raise ConfigError(f"database {path} (CASEJOBS_DB) is not an SQLite database")


BUSY_SLICE_MS = 100  # SQLite's own busy wait; longer waits are ours, so that a stop can end them


class StoppableConnection(sqlite3.Connection):
    """A connection that knows the run's StopFlag and how long to wait for a lock in all."""

    stop_flag: StopFlag | None = None
    busy_timeout_ms: int = 10_000
    _unregister: Callable[[], None] | None = None

    def watch(self, stop_flag: StopFlag | None) -> None:
        """From now on, a stop interrupts whatever statement this connection runs."""
        self.stop_flag = stop_flag
        if stop_flag is not None:
            self._unregister = stop_flag.on_stop(self.interrupt)

    def close(self) -> None:
        if self._unregister is not None:
            self._unregister()
            self._unregister = None
        super().close()


def connect(
    path: Path, busy_timeout_ms: int = 10_000, create: bool = False, stop_flag: StopFlag | None = None
) -> sqlite_utils.Database:
    """Given a database path, return an open sqlite_utils.Database in WAL mode.

    SQLite itself waits only BUSY_SLICE_MS for a lock; with_busy_retry() waits
    the rest of busy_timeout_ms in slices, so that a stop ends the wait, and
    a stop interrupts any statement of the connection. Raise ConfigError if
    the file is missing (unless create), unreadable or not SQLite, and
    DatabaseBusy if another program keeps it locked for the whole timeout.
    """
    if not create:
        check_database_file(path)
    try:
        connection = sqlite3.connect(
            str(path), timeout=BUSY_SLICE_MS / 1000, check_same_thread=False, factory=StoppableConnection
        )
    except sqlite3.DatabaseError as error:
        raise ConfigError(f"database {path} (CASEJOBS_DB) cannot be opened: {error}") from None
    connection.busy_timeout_ms = busy_timeout_ms
    # Text that is not UTF-8 (written by some other program) is shown with U+FFFD, never a failed run.
    connection.text_factory = _lenient_text
    connection.watch(stop_flag)
    try:
        # The first read takes a shared lock: an application holding the file with
        # locking_mode=EXCLUSIVE shows here, as a runtime failure (DatabaseBusy).
        mode = with_busy_retry(connection, lambda: connection.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        connection.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.OperationalError as error:
        connection.close()
        if _is_busy(error):
            raise DatabaseBusy() from None
        raise ConfigError(f"database {path} (CASEJOBS_DB) cannot be opened: {error}") from None
    except sqlite3.DatabaseError as error:
        connection.close()
        raise ConfigError(f"database {path} (CASEJOBS_DB) cannot be opened: {error}") from None
    except BaseException:
        connection.close()
        raise
    if mode.lower() != "wal":
        connection.close()
        raise ConfigError(f"database {path} (CASEJOBS_DB) cannot use WAL mode (got {mode})")
    return sqlite_utils.Database(connection, execute_plugins=False)


def _lenient_text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _is_busy(error: sqlite3.OperationalError) -> bool:
    return "database is locked" in str(error) or "database is busy" in str(error)


Value = TypeVar("Value")


def with_busy_retry(connection: sqlite3.Connection, operation: Callable[[], Value]) -> Value:
    """Run operation (one statement that takes a lock), retrying while the database is busy.

    Retries for the connection's busy_timeout_ms in all. Raise StopRequested
    as soon as the run is stopped, and DatabaseBusy when the time is up.
    """
    stop_flag = getattr(connection, "stop_flag", None)
    budget = getattr(connection, "busy_timeout_ms", 10_000) / 1000
    deadline = time.monotonic() + budget
    while True:
        try:
            return operation()
        except sqlite3.OperationalError as error:
            if not _is_busy(error):
                raise
            if stop_flag is not None:
                stop_flag.check()
            if time.monotonic() >= deadline:
                raise DatabaseBusy() from None


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


@contextlib.contextmanager
def write_transaction(database: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """Run the block in one write transaction: all of it is committed, or none."""
    connection = database.conn
    with_busy_retry(connection, lambda: connection.execute("BEGIN IMMEDIATE"))
    try:
        yield database
    except BaseException:
        # An interrupted statement may have rolled the transaction back already.
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


READERS = 2  # the machines we run on have two cores; more readers only queue


@contextlib.contextmanager
def parallel_readers(
    settings: Settings, stop_flag: StopFlag | None = None, readers: int = READERS
) -> Iterator[Callable]:
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
        connection = connect(settings.database_path, settings.get("core.busy_timeout_ms"), stop_flag=stop_flag).conn
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
                yield key, stop_flag.wait_for(future) if stop_flag is not None else future.result()
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
