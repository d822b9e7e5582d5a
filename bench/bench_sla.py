"""slaCheck: wall time and peak memory on the large and the busy shapes, and over the size sweep.

Goal (issue 12): at most 2 s and 150 MB on the busy shape, where nearly every person has hundreds
of items (each digest lists 50 and totals the rest). Each run uses --force, so that every digest is
rebuilt and rewritten (the first run of a day); in-app only, since mail time is the SMTP server's.
"""

from __future__ import annotations

from bench.common import PROJECT, SHAPES, SWEEP, growth, measure, scale_home, summarise

RUNS = 5
GOAL = "<= 2 s, <= 150 MB (busy)"


def timed(home: object, label: str) -> dict[str, float]:
    command = [str(PROJECT / "bin" / "sla-check"), "--force", "--log-format", "json"]
    measure(command, {"CASEJOBS_HOME": str(home)})
    return summarise(label, [measure(command, {"CASEJOBS_HOME": str(home)}) for _ in range(RUNS)])


def main() -> dict[str, object]:
    print(f"slaCheck --force (goal {GOAL})", flush=True)
    results: dict[str, object] = {"goal": GOAL}
    for shape in SHAPES:
        results[shape] = timed(scale_home(shape), f"{shape}: every digest rewritten")
    sweep = {scale: timed(scale_home(scale), f"sweep {scale}") for scale in SWEEP}
    results["sweep"] = {**sweep, "growth": growth(sweep)}
    print(f"  growth: {results['sweep']['growth']}", flush=True)
    return results
