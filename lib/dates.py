"""Calendar dates as the data model stores them: `YYYY-MM-DD` text, a real day, or bad.

A date of the right shape that is no day (2026-02-30, 2026-13-45) sorts like
a real one, so a text comparison would count it as overdue or not due yet.
Every job that reads a date reads it through here: a real calendar day, or
a bad row that is skipped, counted and named by id.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from typing import Any

DAY_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def calendar_day(value: Any) -> dt.date | None:
    """Given a stored date, return it as a date if it is a real `YYYY-MM-DD` calendar day, else None."""
    if not isinstance(value, str) or not DAY_SHAPE.match(value):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def bad_date_values(connection: sqlite3.Connection, table: str, column: str, where: str) -> list[Any]:
    """Return the distinct non-NULL values of table.column, among rows matching where, that are no calendar day.

    Reads the distinct values only (a few hundred, from an index where there
    is one) and checks them here, so the check costs one pass whatever the
    table's size.
    """
    query = f"SELECT DISTINCT {column} FROM {table} WHERE ({where}) AND {column} IS NOT NULL"
    return [value for (value,) in connection.execute(query) if calendar_day(value) is None]


def rows_with_bad_dates(
    connection: sqlite3.Connection, table: str, column: str, where: str, bad: list[Any], limit: int = 10_000
) -> list[int]:
    """Return the ids of rows matching where whose table.column holds one of the bad values (as
    bad_date_values() found them: the caller has them already, so they are not looked for twice)."""
    if not bad:
        return []
    marks = ", ".join("?" for _ in bad)
    query = f"SELECT id FROM {table} WHERE ({where}) AND {column} IN ({marks}) ORDER BY id LIMIT {int(limit)}"
    return [row_id for (row_id,) in connection.execute(query, bad)]
