"""`python -m jobs <script> [options]` (bin/run-job): run any job of the registry by its script name."""

from __future__ import annotations

import importlib
import sys

from jobs import REGISTRY
from lib.cli import main


def run(arguments: list[str]) -> None:
    """Given the script name and its options, run that job's command; exit 2 for an unknown job."""
    spec = REGISTRY.find(arguments[0]) if arguments else None
    if spec is None:
        known = ", ".join(f"{spec.script} ({spec.name})" for spec in REGISTRY)
        print(f"run-job: error: name a job: {known}", file=sys.stderr)
        sys.exit(2)
    sys.argv = [spec.script, *arguments[1:]]
    main(importlib.import_module(spec.module).command)


if __name__ == "__main__":
    run(sys.argv[1:])
