"""nightlyBackup on the large database, beside the shell pipeline it must keep up with.

Target (issue 4): the whole job (online backup, integrity_check, exports,
ZIP, verification) within 1.5x of `sqlite3 DB ".backup COPY" && zip -q PKG
COPY` measured in the same run on the same machine, and peak memory under
200 MB. Each job run uses --force, so that it really writes the package.
"""

from __future__ import annotations

import shutil

from bench.common import PROJECT, WORK, large_home, measure, summarise

RUNS = 3


def main() -> dict[str, object]:
    print("nightlyBackup (target: within 1.5x of sqlite3 .backup && zip, < 200 MB)", flush=True)
    home = large_home()
    scratch = WORK / "backup-pipeline"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    copy, package = scratch / "copy.db", scratch / "package.zip"
    pipeline = [
        "/bin/sh",
        "-c",
        f'rm -f {copy} {package} && sqlite3 {home}/casejobs.db ".backup {copy}" && zip -q {package} {copy}',
    ]
    job = [str(PROJECT / "bin" / "nightly-backup"), "--force", "--log-format", "json"]
    environment = {"CASEJOBS_HOME": str(home)}
    pipeline_runs, job_runs = [], []
    for _ in range(RUNS):  # interleaved, so that both see the same machine
        pipeline_runs.append(measure(pipeline))
        job_runs.append(measure(job, environment))
    shutil.rmtree(scratch, ignore_errors=True)
    results = {
        "pipeline": summarise("sqlite3 .backup && zip -q (the yardstick)", pipeline_runs),
        "job": summarise("bin/nightly-backup --force", job_runs),
    }
    ratio = results["job"]["median_s"] / results["pipeline"]["median_s"]
    print(f"  ratio job / pipeline: {ratio:.2f} (target <= 1.5)", flush=True)
    return {**results, "ratio": round(ratio, 2)}
