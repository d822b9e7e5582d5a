"""slaCheck on the large database: wall time and peak memory.

Target (issue 3): under 2 s and under 200 MB. Each run uses --force, so that
every digest is rebuilt and rewritten (the first run of a day); in-app only,
since mail time is the SMTP server's.
"""

from __future__ import annotations

from bench.common import PROJECT, large_home, measure, summarise

RUNS = 5


def main() -> dict[str, object]:
    print("slaCheck (target: < 2 s, < 200 MB)", flush=True)
    home = large_home()
    command = [str(PROJECT / "bin" / "sla-check"), "--force", "--log-format", "json"]
    measure(command, {"CASEJOBS_HOME": str(home)})
    measurements = [measure(command, {"CASEJOBS_HOME": str(home)}) for _ in range(RUNS)]
    return {"large, --force": summarise("large, every digest rewritten (--force)", measurements)}
