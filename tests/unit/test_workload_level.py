"""The workload level at every threshold edge of data-model.md."""

from __future__ import annotations

import pytest

from jobs.user_pending_refresh import workload_level


@pytest.mark.parametrize(
    ("total", "level"),
    [(0, "LOW"), (10, "LOW"), (11, "MODERATE"), (15, "MODERATE"), (16, "HIGH"), (20, "HIGH"), (21, "CRITICAL")],
)
def test_total_thresholds(total: int, level: str) -> None:
    assert workload_level(total, 0, 0) == level


@pytest.mark.parametrize(("urgent", "level"), [(2, "LOW"), (3, "MODERATE"), (4, "HIGH"), (5, "HIGH"), (6, "CRITICAL")])
def test_urgent_thresholds(urgent: int, level: str) -> None:
    assert workload_level(urgent, urgent, 0) == level


@pytest.mark.parametrize(("overdue", "level"), [(1, "LOW"), (2, "MODERATE"), (3, "HIGH"), (4, "CRITICAL")])
def test_overdue_thresholds(overdue: int, level: str) -> None:
    assert workload_level(overdue, 0, overdue) == level


def test_the_highest_measure_wins() -> None:
    assert workload_level(5, 6, 0) == "CRITICAL"
    assert workload_level(12, 0, 3) == "HIGH"
    assert workload_level(21, 0, 0) == "CRITICAL"
