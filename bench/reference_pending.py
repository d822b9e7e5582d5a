"""The reference beside userPendingRefresh: the same figures, one GROUP BY per kind of item, one after the
other on one connection, and nothing written (what a plain script over the project's indexes would do).

Run as `python -m bench.reference_pending DATABASE`; prints the number of users counted.
"""

from __future__ import annotations

import sqlite3
import sys
from collections import defaultdict

from jobs.user_pending_refresh import SOURCES
from lib.clock import now_utc, periods_for, today_ist


def main() -> None:
    connection = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
    parameters = vars(periods_for(today_ist(now_utc())))
    totals: dict[int, int] = defaultdict(int)
    for source in SOURCES:
        for user_id, _priority, _category, count, *_buckets in connection.execute(source.sql, parameters):
            totals[user_id] += count
    print(len(totals))


if __name__ == "__main__":
    main()
