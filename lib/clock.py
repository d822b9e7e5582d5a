"""The one clock: "now" in UTC and "today" in India, whatever the host's zone.

Setting CASEJOBS_NOW (ISO-8601) freezes the clock, so that any run can be
replayed for a given moment from the shell and from tests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from dateutil import parser as date_parser

from lib.errors import ConfigError

IST = ZoneInfo("Asia/Kolkata")
UTC = dt.UTC
NOW_VARIABLE = "CASEJOBS_NOW"


def parse_frozen_now(text: str) -> dt.datetime:
    """Given an ISO-8601 instant, return it as an aware UTC datetime.

    A value without an offset is read as IST, the zone every schedule uses.
    Raise ConfigError naming CASEJOBS_NOW if the text is not an instant.
    """
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = date_parser.isoparse(text.strip())
        except (ValueError, OverflowError):
            raise ConfigError(
                f"{NOW_VARIABLE}={text!r} is not an ISO-8601 time (for example 2026-11-28T18:00:00+05:30)"
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=IST)
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not in_range(utc):
        raise ConfigError(
            f"{NOW_VARIABLE}={text!r} is outside the years {EARLIEST_YEAR} to {LATEST_YEAR} that casejobs accepts"
        )
    return utc


EARLIEST_YEAR, LATEST_YEAR = 2000, 2099  # the ledger's range: anything else is a broken clock


def in_range(moment: dt.datetime) -> bool:
    """Return True if the aware instant lies in the years casejobs accepts (2000 to 2099, UTC)."""
    return EARLIEST_YEAR <= moment.astimezone(UTC).year <= LATEST_YEAR


def now_utc(frozen: str | None = None) -> dt.datetime:
    """Return the current instant (aware, UTC), or the frozen one when given CASEJOBS_NOW's text.

    Raise ConfigError if the clock reads outside the years 2000 to 2099: a
    record stamped there would be nonsense to every reader.
    """
    if frozen and frozen.strip():
        return parse_frozen_now(frozen)
    moment = dt.datetime.now(UTC)
    if not in_range(moment):
        raise ConfigError(f"the system clock reads {moment.isoformat()}, outside {EARLIEST_YEAR} to {LATEST_YEAR}")
    return moment


def to_ist(moment: dt.datetime) -> dt.datetime:
    """Given an aware instant, return the same instant on India's wall clock."""
    return moment.astimezone(IST)


def today_ist(moment: dt.datetime) -> dt.date:
    """Given an aware instant, return the calendar date it falls on in India."""
    return to_ist(moment).date()


def format_utc(moment: dt.datetime) -> str:
    """Given an aware instant, return the data model's form: 2026-11-28T01:00:00.000Z."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_utc(text: str) -> dt.datetime:
    """Given a stored instant such as 2026-11-28T01:00:00.000Z, return it aware in UTC."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True)
class Periods:
    """The IST calendar periods that "due today / this week / this month" refer to.

    Every bound is a YYYY-MM-DD string, inclusive, so that it compares directly
    with the TEXT date columns of the database.
    """

    today: str
    week_start: str
    week_end: str
    month_start: str
    month_end: str


def periods_for(day: dt.date) -> Periods:
    """Given an IST calendar date, return its day, week (Monday-Sunday) and month bounds."""
    week_start = day - dt.timedelta(days=day.weekday())
    week_end = week_start + dt.timedelta(days=6)
    month_start = day.replace(day=1)
    next_month = (month_start + dt.timedelta(days=32)).replace(day=1)
    month_end = next_month - dt.timedelta(days=1)
    return Periods(
        today=day.isoformat(),
        week_start=week_start.isoformat(),
        week_end=week_end.isoformat(),
        month_start=month_start.isoformat(),
        month_end=month_end.isoformat(),
    )
