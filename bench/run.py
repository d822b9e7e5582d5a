"""Run every benchmark and save the figures in var/bench/results.json."""

from __future__ import annotations

import json
import platform
import sys

from bench import (
    bench_backup,
    bench_jobstats,
    bench_offsite,
    bench_package_size,
    bench_pending,
    bench_sla,
    bench_sync,
)
from bench.common import SHAPES, WORK, scale_home


def main() -> None:
    for shape in SHAPES:
        scale_home(shape, rebuild="--rebuild" in sys.argv)
    results = {
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "userPendingRefresh": bench_pending.main(),
        "slaCheck": bench_sla.main(),
        "nightlyBackup": bench_backup.main(),
        "package_size": bench_package_size.main(),
        "offsite": bench_offsite.main(),
        "dailySync": bench_sync.main(),
        "jobstats": bench_jobstats.main(),
    }
    print(table(results), flush=True)
    print(bench_package_size.table(results["package_size"]), flush=True)
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"figures saved in {WORK / 'results.json'}")


def _figure(result: dict[str, float]) -> str:
    return f"{result['median_s']:.2f} s, {result['peak_mb']:.0f} MB"


def table(results: dict) -> str:
    """The README's table: each job on both shapes, next to its goal and its reference from the same run."""
    lines = ["| job | large | busy | goal | reference in the same run (busy) |", "|---|---|---|---|---|"]
    pending, sla, backup = results["userPendingRefresh"], results["slaCheck"], results["nightlyBackup"]
    lines.append(
        f"| userPendingRefresh | {_figure(pending['large'])} | {_figure(pending['busy'])} | {pending['goal']} "
        f"| one GROUP BY per kind, one connection: {_figure(pending['busy reference'])} |"
    )
    lines.append(f"| slaCheck --force | {_figure(sla['large'])} | {_figure(sla['busy'])} | {sla['goal']} | – |")
    for key, label in (("job", "quick_check"), ("job_full_check", "full integrity_check")):
        lines.append(
            f"| nightlyBackup --force ({label}) | {_figure(backup['large'][key])} | {_figure(backup['busy'][key])} "
            f"| {backup['goal']} | `sqlite3 .backup && zip -q`: {_figure(backup['busy']['pipeline'])}"
            f" (large {backup['large']['pipeline']['median_s']:.2f} s) |"
        )
    lines.append(
        f"| package size | {backup['large']['package_mb']} MB ({backup['large']['size_ratio']}x) "
        f"| {backup['busy']['package_mb']} MB ({backup['busy']['size_ratio']}x) | <= 1.1x the reference ZIP "
        f"| `zip -q` of the copy: {backup['busy']['reference_zip_mb']} MB (large {backup['large']['reference_zip_mb']} MB) |"
    )
    offsite = results["offsite"]
    lines.append(
        f"| nightlyBackup --force, encrypted and copied off-site | – | {_figure(offsite['encrypted_offsite'])} "
        f"| none set (issue 13) | the same run in clear: {_figure(offsite['plain'])} |"
    )
    lines.append(
        f"| backupDrill (decrypt, verify, restore, full check, counts) | – | {_figure(offsite['drill'])} | none set | – |"
    )
    lines += ["", "| size sweep | small | medium | large | growth, medium to large |", "|---|---|---|---|---|"]
    for name, result in (("userPendingRefresh", pending), ("slaCheck", sla), ("nightlyBackup", backup)):
        sweep = result["sweep"]
        lines.append(
            f"| {name} | {sweep['small']['median_s']:.2f} s | {sweep['medium']['median_s']:.2f} s "
            f"| {sweep['large']['median_s']:.2f} s | {sweep['growth']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
