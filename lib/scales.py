"""How much demo data `jobctl db seed` makes, by name: apart from lib/seed.py, so that the command can
offer the names without loading the seeder."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    """How much to generate: per-case and per-user ratios give "the other tables in proportion"."""

    users: int
    teams: int
    cases: int
    tasks_per_case: int
    # A busy firm: half of all tasks and subtasks open whatever their case, due over a year either side of
    # today (nearly every user CRITICAL with hundreds of items), and ten audit rows per case.
    busy: bool = False
    audit_per_case: float = 0.5


SCALES = {
    "small": Scale(users=25, teams=4, cases=500, tasks_per_case=10),
    "medium": Scale(users=200, teams=20, cases=20_000, tasks_per_case=10),
    "large": Scale(users=2_000, teams=200, cases=200_000, tasks_per_case=10),
    "busy": Scale(users=2_000, teams=200, cases=200_000, tasks_per_case=10, busy=True, audit_per_case=10),
    # The busy shape at the size of the tests: every figure checked against a reference in seconds.
    "small-busy": Scale(users=40, teams=5, cases=600, tasks_per_case=10, busy=True, audit_per_case=10),
}
