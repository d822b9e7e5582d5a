"""`python -m jobs <script> [options]` (bin/run-job): run any job of the registry by its script name."""

from __future__ import annotations

import importlib
import sys

from jobs import REGISTRY
from lib.cli import main


def usage() -> str:
    """The help of run-job: how to call it, and the jobs it knows."""
    jobs = "\n".join(f"  {spec.script:<22} {spec.name}: {spec.summary}" for spec in REGISTRY)
    return (
        "Usage: run-job JOB [OPTIONS]\n\n  Run one job of the registry by its script name; "
        f"`run-job JOB --help` shows the job's options.\n\nJobs:\n{jobs}\n"
    )


def run(arguments: list[str]) -> None:
    """Given the script name and its options, run that job's command; exit 2 for an unknown job."""
    if arguments[:1] in (["-h"], ["--help"]):
        print(usage(), end="")
        sys.exit(0)
    spec = REGISTRY.find(arguments[0]) if arguments else None
    if spec is None:
        known = ", ".join(f"{spec.script} ({spec.name})" for spec in REGISTRY)
        print(f"run-job: error: name a job: {known}", file=sys.stderr)
        sys.exit(2)
    sys.argv = [spec.script, *arguments[1:]]
    main(importlib.import_module(spec.module).command)


def start() -> None:
    """The console script casejobs-run-job: run the job its first argument names."""
    run(sys.argv[1:])


if __name__ == "__main__":
    start()
