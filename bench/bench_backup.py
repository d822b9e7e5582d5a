"""nightlyBackup beside the shell pipeline it must keep up with, on the large and the busy shapes, and
over the size sweep.

Goal (issue 12): the whole job (online backup, quick_check, exports, ZIP, verification) no slower than
`sqlite3 DB ".backup COPY" && zip -q PKG COPY` measured in the same run on the same machine, at most
200 MB, and the package at most 1.1x that pipeline's ZIP. Each job run uses --force, so that it
really writes the package; job and pipeline runs are interleaved, so that both see the same machine.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.common import PROJECT, SHAPES, SWEEP, WORK, growth, measure, scale_home, summarise
from jobs import WEEKDAYS
from lib.clock import now_utc, today_ist

RUNS = 3
GOAL = "<= 1.0x the pipeline, <= 200 MB, package <= 1.1x its ZIP (busy)"


def job_command() -> list[str]:
    return [str(PROJECT / "bin" / "nightly-backup"), "--force", "--log-format", "json"]


def quick_night(home: Path) -> dict[str, str]:
    """The environment of a night with a quick_check: the full check set for tomorrow (IST), whatever day
    the bench runs on."""
    tomorrow = WEEKDAYS[(today_ist(now_utc()).weekday() + 1) % 7]
    return {"CASEJOBS_HOME": str(home), "CASEJOBS_BACKUP_FULL_CHECK_DAY": tomorrow}


def compare(home: Path, label: str) -> dict[str, object]:
    """Time the job and the pipeline, interleaved, and compare their times and package sizes."""
    scratch = WORK / "backup-pipeline"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    copy, package = scratch / "copy.db", scratch / "package.zip"
    pipeline = [
        "/bin/sh",
        "-c",
        f'rm -f {copy} {package} && sqlite3 {home}/casejobs.db ".backup {copy}" && zip -q {package} {copy}',
    ]
    quick = quick_night(home)
    full = {"CASEJOBS_HOME": str(home), "CASEJOBS_BACKUP_FULL_CHECK_DAY": "every"}
    pipeline_runs, job_runs, full_check_runs = [], [], []
    for _ in range(RUNS):
        pipeline_runs.append(measure(pipeline))
        job_runs.append(measure(job_command(), quick))
    full_check_runs.append(measure(job_command(), full))
    reference_size = package.stat().st_size
    shutil.rmtree(scratch, ignore_errors=True)
    (ours,) = sorted((home / "backups").glob("casejobs-backup-*.zip"))
    results = {
        "pipeline": summarise(f"{label}: sqlite3 .backup && zip -q (the reference)", pipeline_runs),
        "job": summarise(f"{label}: bin/nightly-backup --force (quick_check)", job_runs),
        "job_full_check": summarise(f"{label}: the same with the full integrity_check", full_check_runs),
    }
    results["ratio"] = round(results["job"]["median_s"] / results["pipeline"]["median_s"], 2)
    results["package_mb"] = round(ours.stat().st_size / 1e6, 1)
    results["reference_zip_mb"] = round(reference_size / 1e6, 1)
    results["size_ratio"] = round(ours.stat().st_size / reference_size, 2)
    print(
        f"  {label}: time ratio {results['ratio']:.2f}, package {results['package_mb']} MB"
        f" vs zip {results['reference_zip_mb']} MB (ratio {results['size_ratio']:.2f})",
        flush=True,
    )
    return results


def main() -> dict[str, object]:
    print(f"nightlyBackup (goal {GOAL})", flush=True)
    results: dict[str, object] = {"goal": GOAL}
    for shape in SHAPES:
        results[shape] = compare(scale_home(shape), shape)
    sweep = {}
    for scale in SWEEP:
        home = scale_home(scale)
        sweep[scale] = summarise(f"sweep {scale}", [measure(job_command(), quick_night(home)) for _ in range(RUNS)])
    results["sweep"] = {**sweep, "growth": growth(sweep)}
    print(f"  growth: {results['sweep']['growth']}", flush=True)
    return results
