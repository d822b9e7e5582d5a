"""What every benchmark shares: the large database, built once, and timing a bin/ script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
WORK = PROJECT / "var" / "bench"


@dataclass
class Measurement:
    """One timed run of a command: wall seconds, peak resident memory and exit code."""

    seconds: float
    peak_mb: float
    exit_code: int


# Runs the command as the child of a fresh, small Python and reports the child's
# own rusage. On Linux a child's peak RSS starts at its parent's size (it is
# carried over fork and vfork-then-exec), so measuring straight from this
# process would report the benchmark's memory, not the command's.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as report:
    report.write(f"{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def measure(arguments: list[str], environment: dict[str, str] | None = None) -> Measurement:
    """Run a command to completion and return its wall time, peak RSS and exit code."""
    with tempfile.NamedTemporaryFile("r", suffix=".rusage") as report:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", _LAUNCHER, report.name, *arguments],
            env={**os.environ, **(environment or {})},
            check=True,
        )
        seconds = time.perf_counter() - started
        peak_kb, exit_code = (int(value) for value in report.read().split())
    return Measurement(seconds, peak_kb / 1024, exit_code)


def scale_home(scale: str, rebuild: bool = False) -> Path:
    """Return a CASEJOBS_HOME holding the seeder's database of that scale (large, busy, medium...),
    seeding it the first time (a minute for the large and busy ones)."""
    home = WORK / scale
    database = home / "casejobs.db"
    if rebuild and home.exists():
        shutil.rmtree(home)
    if not database.exists():
        home.mkdir(parents=True, exist_ok=True)
        print(f"building the {scale} database in {database} (once)...", flush=True)
        started = time.perf_counter()
        subprocess.run(
            [str(PROJECT / "bin" / "jobctl"), "db", "seed", "--scale", scale, "--db", str(database)],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "CASEJOBS_HOME": str(home)},
        )
        print(f"  seeded in {time.perf_counter() - started:.1f} s", flush=True)
    return migrated(home)


SHAPES = ("large", "busy")  # the seeder's large data (most work done) and a busy firm's (half of it open)
SWEEP = ("small", "medium", "large")  # how each job's cost grows with the data


def growth(results: dict[str, dict[str, float]]) -> str:
    """Say how a job's time grew from medium to large (ten times the data): linear or better, or worse."""
    ratio = results["large"]["median_s"] / max(results["medium"]["median_s"], 1e-9)
    return f"{ratio:.1f}x the time for 10x the data ({'linear or better' if ratio <= 10 else 'WORSE THAN LINEAR'})"


def migrated(home: Path) -> Path:
    """Bring the database under home to the current schema (a kept bench database may be older)."""
    subprocess.run(
        [str(PROJECT / "bin" / "jobctl"), "db", "init"],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "CASEJOBS_HOME": str(home)},
    )
    return home


def summarise(label: str, measurements: list[Measurement]) -> dict[str, float]:
    """Print and return the median and worst wall time and the peak memory of repeated runs."""
    seconds = sorted(measurement.seconds for measurement in measurements)
    result = {
        "median_s": round(seconds[len(seconds) // 2], 3),
        "max_s": round(seconds[-1], 3),
        "peak_mb": round(max(measurement.peak_mb for measurement in measurements), 1),
    }
    failures = [measurement.exit_code for measurement in measurements if measurement.exit_code != 0]
    print(
        f"  {label:<52} median {result['median_s']:.3f} s  max {result['max_s']:.3f} s  peak {result['peak_mb']:.0f} MB"
        + (f"  EXIT CODES {failures}" if failures else ""),
        flush=True,
    )
    return result
