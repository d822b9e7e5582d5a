"""userPendingRefresh on the large database: wall time and peak memory.

Target (issue 2): under 2 s and under 200 MB at large scale, whatever share of
the items is open. Measured twice: on the seeded history (a minority open) and
on a copy where about 80% of every kind of item is open.
"""

from __future__ import annotations

import shutil
import sqlite3

from bench.common import PROJECT, WORK, large_home, measure, migrated, summarise

RUNS = 5
MOSTLY_OPEN = """
UPDATE tasks SET status = CASE id % 3 WHEN 0 THEN 'TODO' WHEN 1 THEN 'IN_PROGRESS' ELSE 'BLOCKED' END,
    due_date = date('now', ((id * 7919) % 400 - 200) || ' days') WHERE id % 10 < 8;
UPDATE subtasks SET status = 'TODO' WHERE id % 10 < 8;
UPDATE cases SET status = 'OPEN' WHERE id % 10 < 8;
UPDATE hearings SET status = 'SCHEDULED' WHERE id % 10 < 8;
UPDATE orders SET review_status = 'PENDING_REVIEW' WHERE id % 10 < 8;
UPDATE documents SET status = CASE WHEN id % 10 < 4 THEN 'DRAFT' ELSE 'PENDING_REVIEW' END WHERE id % 10 < 8;
UPDATE worklogs SET status = CASE WHEN id % 10 < 4 THEN 'DRAFT' ELSE 'SUBMITTED' END WHERE id % 10 < 8;
"""


def mostly_open_home() -> object:
    """Return a CASEJOBS_HOME with a copy of the large database where most items are open."""
    home = WORK / "large-mostly-open"
    database = home / "casejobs.db"
    if not database.exists():
        home.mkdir(parents=True, exist_ok=True)
        print("  making the mostly-open copy (once)...", flush=True)
        shutil.copy(large_home() / "casejobs.db", home / "building.db")
        connection = sqlite3.connect(home / "building.db")
        connection.executescript(MOSTLY_OPEN)
        connection.execute("ANALYZE")
        connection.close()
        (home / "building.db").rename(database)
    return migrated(home)


def open_share(home: object) -> str:
    connection = sqlite3.connect(f"{home}/casejobs.db")
    open_tasks, all_tasks = connection.execute(
        "SELECT sum(status IN ('TODO','IN_PROGRESS','BLOCKED')), count(*) FROM tasks"
    ).fetchone()
    connection.close()
    return f"{open_tasks:,} of {all_tasks:,} tasks open"


def main() -> dict[str, object]:
    print("userPendingRefresh (target: < 2 s, < 200 MB)", flush=True)
    results = {}
    for label, home in (("seeded history", large_home()), ("mostly open", mostly_open_home())):
        command = [str(PROJECT / "bin" / "user-pending-refresh"), "--log-format", "json"]
        measure(command, {"CASEJOBS_HOME": str(home)})  # warm the page cache once
        measurements = [measure(command, {"CASEJOBS_HOME": str(home)}) for _ in range(RUNS)]
        results[label] = summarise(f"large, {label} ({open_share(home)})", measurements)
    return results
