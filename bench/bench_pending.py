"""userPendingRefresh: wall time and peak memory of a full pass, on the large and the busy shapes, beside
its reference, and over the size sweep.

Goal (issue 12): at most 1.5 s and 100 MB on the busy shape (half of all tasks and subtasks open, due
over a year either side of today). The reference, measured in the same run: the same counts, one
GROUP BY per kind of item, one after the other on one connection (bench/reference_pending.py).
"""

from __future__ import annotations

import sys

from bench.common import PROJECT, SHAPES, SWEEP, growth, measure, scale_home, summarise

RUNS = 5
GOAL = "<= 1.5 s, <= 100 MB (busy)"


def timed(home: object, label: str) -> dict[str, float]:
    command = [str(PROJECT / "bin" / "user-pending-refresh"), "--log-format", "json"]
    measure(command, {"CASEJOBS_HOME": str(home)})  # warm the page cache once
    return summarise(label, [measure(command, {"CASEJOBS_HOME": str(home)}) for _ in range(RUNS)])


def main() -> dict[str, object]:
    print(f"userPendingRefresh (goal {GOAL})", flush=True)
    results: dict[str, object] = {"goal": GOAL}
    for shape in SHAPES:
        home = scale_home(shape)
        results[shape] = timed(home, f"{shape}: full pass")
        reference = [sys.executable, "-P", "-m", "bench.reference_pending", str(home / "casejobs.db")]
        environment = {"PYTHONPATH": str(PROJECT)}
        results[f"{shape} reference"] = summarise(
            f"{shape}: reference, one GROUP BY per kind", [measure(reference, environment) for _ in range(RUNS)]
        )
    sweep = {scale: timed(scale_home(scale), f"sweep {scale}") for scale in SWEEP}
    results["sweep"] = {**sweep, "growth": growth(sweep)}
    print(f"  growth: {results['sweep']['growth']}", flush=True)
    return results
