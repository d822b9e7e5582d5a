"""Stored dates: a real `YYYY-MM-DD` calendar day or a bad one, whatever its shape, and finding the rows that hold one."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from lib.dates import bad_date_values, calendar_day, rows_with_bad_dates
from tests.builders import Dataset


@pytest.mark.parametrize(
    ("value", "day"),
    [
        ("2026-11-28", dt.date(2026, 11, 28)),
        ("2024-02-29", dt.date(2024, 2, 29)),
        ("2026-12-31", dt.date(2026, 12, 31)),
    ],
)
def test_a_real_calendar_day_is_read_as_a_date(value: str, day: dt.date) -> None:
    assert calendar_day(value) == day


@pytest.mark.parametrize(
    "value",
    [
        "2026-02-29",  # not a leap year
        "2026-02-30",
        "2026-13-45",
        "2026-00-10",
        "15/03/2024",
        "15-03-2024",
        "2026-1-5",
        " 2026-01-05",
        "2026-01-05\n",
        "2026-01-05T00:00:00",
        "20260105",
        "٢٠٢٦-٠١-٠٥",  # Arabic-Indic digits: the shape, but not the data model's text
        "",
        None,
        20260105,
        dt.date(2026, 1, 5),
        b"2026-01-05",
    ],
)
def test_anything_else_is_no_calendar_day(value: Any) -> None:
    assert calendar_day(value) is None


def test_rows_with_bad_dates_are_found_among_the_matching_rows_only_in_id_order(dataset: Dataset) -> None:
    data, connection = dataset, dataset.connection
    lawyer = data.user()
    case = data.case(lawyer)
    late_bad = data.task(case, lawyer, due_date="2026-13-45")
    good = data.task(case, lawyer, due_date="2026-11-28")
    first_bad = data.task(case, lawyer, due_date="15/03/2024")
    data.task(case, lawyer, due_date=None)
    data.task(case, lawyer, status="DONE", due_date="2026-02-30")  # not open: not looked at
    same_bad_again = data.task(case, lawyer, due_date="15/03/2024")

    where = "status = 'TODO'"
    bad = bad_date_values(connection, "tasks", "due_date", where)
    assert sorted(bad) == ["15/03/2024", "2026-13-45"]
    assert rows_with_bad_dates(connection, "tasks", "due_date", where, bad) == [late_bad, first_bad, same_bad_again]
    assert rows_with_bad_dates(connection, "tasks", "due_date", where, bad, limit=2) == [late_bad, first_bad]
    everywhere = bad_date_values(connection, "tasks", "due_date", "1 = 1")
    assert good not in rows_with_bad_dates(connection, "tasks", "due_date", "1 = 1", everywhere)


def test_a_table_without_bad_dates_gives_no_rows(dataset: Dataset) -> None:
    data, connection = dataset, dataset.connection
    lawyer = data.user()
    data.task(data.case(lawyer), lawyer, due_date="2026-11-28")
    bad = bad_date_values(connection, "tasks", "due_date", "1 = 1")
    assert bad == [] and rows_with_bad_dates(connection, "tasks", "due_date", "1 = 1", bad) == []
