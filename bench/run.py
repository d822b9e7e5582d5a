"""Run every benchmark and save the figures in var/bench/results.json."""

from __future__ import annotations

import json
import platform
import sys

from bench import bench_backup, bench_jobstats, bench_pending, bench_sla, bench_sync
from bench.common import WORK, large_home


def main() -> None:
    large_home(rebuild="--rebuild" in sys.argv)
    results = {
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "userPendingRefresh": bench_pending.main(),
        "slaCheck": bench_sla.main(),
        "nightlyBackup": bench_backup.main(),
        "dailySync": bench_sync.main(),
        "jobstats": bench_jobstats.main(),
    }
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"figures saved in {WORK / 'results.json'}")


if __name__ == "__main__":
    main()
