"""What jobstats adds up: --since in every form it takes, nearest-rank percentiles, and the runs counted."""

from __future__ import annotations

import datetime as dt

import pytest

from lib.errors import UsageError
from lib.history import Run
from lib.stats import JobReport, Runs, parse_since, percentile

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - dt.timedelta(days=7)),
        ("12h", NOW - dt.timedelta(hours=12)),
        ("30m", NOW - dt.timedelta(minutes=30)),
        (" 0d ", NOW),
        ("2026-11-01", dt.datetime(2026, 10, 31, 18, 30, tzinfo=dt.UTC)),  # midnight IST
        ("2026-11-01T06:30:00Z", dt.datetime(2026, 11, 1, 6, 30, tzinfo=dt.UTC)),
        ("2026-11-01T06:30:00", dt.datetime(2026, 11, 1, 1, 0, tzinfo=dt.UTC)),  # no offset: IST
        ("2026-11-01T06:30:00-05:00", dt.datetime(2026, 11, 1, 11, 30, tzinfo=dt.UTC)),
    ],
)
def test_since_is_read_as_a_span_back_from_now_an_ist_date_or_an_instant(text: str, expected: dt.datetime) -> None:
    moment = parse_since(text, NOW)
    assert moment == expected
    assert moment is not None and moment.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("text", ["all", " all", "99999d", "999999999d", "1999-12-31", "1990-01-01T00:00:00Z"])
def test_all_and_anything_before_2000_mean_the_whole_ledger(text: str) -> None:
    assert parse_since(text, NOW) is None


def test_a_number_of_days_beyond_any_calendar_means_the_whole_ledger() -> None:
    assert parse_since("9999999999d", NOW) is None


@pytest.mark.parametrize("text", ["", "7", "7w", "-7d", "7 days", "yesterday", "2026-13-01", "2026-02-30", "ALL"])
def test_anything_else_is_a_usage_error_naming_the_forms_it_takes(text: str) -> None:
    with pytest.raises(UsageError, match=r"expected 7d, 12h, 30m, a date \(2026-11-01\), an ISO time or all"):
        parse_since(text, NOW)


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([42], 0.95) == 42
    assert percentile([1, 2, 3, 4], 0.5) == 2
    assert percentile([1, 2, 3, 4], 0.95) == 4
    hundred = list(range(1, 101))
    assert (percentile(hundred, 0.5), percentile(hundred, 0.95), percentile(hundred, 0.96)) == (50, 95, 96)


def test_skipped_and_locked_runs_are_counted_but_never_in_the_durations_or_the_success_rate() -> None:
    runs = Runs()
    runs.add(Run("a", "2026-11-26T01:00:00.000Z", "success", duration_ms=100, items=3))
    runs.add(Run("b", "2026-11-27T01:00:00.000Z", "failed", duration_ms=300, items=1, errors=1))
    runs.add(Run("c", "2026-11-27T01:05:00.000Z", "skipped", duration_ms=5, items=7))
    runs.add(Run("d", "2026-11-28T01:00:00.000Z", "locked", duration_ms=9))
    runs.add(Run("e", "2026-11-28T01:10:00.000Z", "running"))

    assert (runs.total, runs.worked) == (4, 2)
    assert (runs.counts["success"], runs.counts["failed"], runs.counts["skipped"], runs.counts["locked"]) == (
        1,
        1,
        1,
        1,
    )
    assert sorted(runs.durations) == [100, 300]
    assert (runs.items, runs.errors) == (4, 1)
    assert runs.last_worked is not None and runs.last_worked.run_id == "b"
    figures = JobReport("dailySync", runs).as_dict()
    assert figures["success_rate"] == 0.5
    assert figures["duration_ms"] == {"p50": 100, "p95": 300, "max": 300}
    assert figures["running"] is True


def test_a_dry_run_is_counted_but_never_the_last_run_that_did_work() -> None:
    runs = Runs()
    runs.add(Run("real", "2026-11-26T01:00:00.000Z", "partial", duration_ms=10))
    runs.add(Run("dry", "2026-11-27T01:00:00.000Z", "success", dry_run=True, duration_ms=20))
    assert runs.last_worked is not None and runs.last_worked.run_id == "real"
    assert runs.counts["success"] == 1


def test_a_job_with_only_skipped_runs_has_no_success_rate() -> None:
    runs = Runs()
    runs.add(Run("a", "2026-11-26T01:00:00.000Z", "skipped"))
    figures = JobReport("slaCheck", runs).as_dict()
    assert (figures["runs"], figures["success_rate"], figures["last_run"]) == (1, None, None)
    assert figures["duration_ms"] == {"p50": None, "p95": None, "max": None}
