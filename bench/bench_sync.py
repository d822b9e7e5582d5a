"""dailySync pacing: 100 cases, the simulator answering in 300 ms.

Target (issue 5): at a rate limit R the wall time stays within 10% of 100/R
where concurrency allows; R = 2/s and R = 5/s, with just enough concurrency
to keep R requests a second in flight (ceil(R x 0.3 s) + 1). Beside it, a
naive loop that sleeps 1/R after each request, as a script without pacing
would: 100 x (0.3 s + 1/R).
"""

from __future__ import annotations

import math
import shutil
import sqlite3
import time

import httpx

from bench.common import PROJECT, WORK, measure, migrated, summarise
from lib.ecourts_sim import Simulator, SimulatorServer

CASES = 100
LATENCY_MS = 300
TOKEN = "bench-token"


def home_with_cases() -> object:
    """A CASEJOBS_HOME whose database holds 100 open cases with valid CNRs, none synced yet."""
    home = WORK / "sync"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "casejobs.db").touch()
    migrated(home)
    connection = sqlite3.connect(home / "casejobs.db")
    connection.execute(
        "INSERT INTO users (id, name, email, role) VALUES (1, 'Lawyer', 'lawyer@firm.example', 'LAWYER')"
    )
    connection.executemany(
        "INSERT INTO cases (case_number, cnr, status, lawyer_id) VALUES (?, ?, 'OPEN', 1)",
        [(f"CASE-2026-{number:06d}", f"MHAU01{number:06d}2024") for number in range(1, CASES + 1)],
    )
    connection.commit()
    connection.close()
    return home


def naive_loop(base_url: str, rate: float) -> float:
    """Fetch every case one after another, sleeping 1/rate after each; return the seconds taken."""
    started = time.perf_counter()
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for number in range(1, CASES + 1):
            client.get(f"/api/partner/case/MHAU01{number:06d}2024").raise_for_status()
            time.sleep(1 / rate)
    return time.perf_counter() - started


def main() -> dict[str, object]:
    print(
        f"dailySync pacing, {CASES} cases, simulator latency {LATENCY_MS} ms (target: within 10% of {CASES}/R)",
        flush=True,
    )
    server = SimulatorServer(Simulator(token=TOKEN, latency_ms=LATENCY_MS)).start()
    results: dict[str, object] = {}
    try:
        for rate in (2, 5):
            concurrency = math.ceil(rate * LATENCY_MS / 1000) + 1
            home = home_with_cases()
            environment = {
                "CASEJOBS_HOME": str(home),
                "CASEJOBS_ECOURTS_BASE_URL": server.base_url,
                "CASEJOBS_ECOURTS_TOKEN": TOKEN,
                "CASEJOBS_ECOURTS_RATE_PER_MINUTE": str(rate * 60),
                "CASEJOBS_ECOURTS_CONCURRENCY": str(concurrency),
            }
            job = summarise(
                f"bin/daily-sync at R = {rate}/s, concurrency {concurrency}",
                [measure([str(PROJECT / "bin" / "daily-sync"), "--log-format", "json"], environment)],
            )
            ideal = CASES / rate
            naive = naive_loop(server.base_url, rate)
            print(
                f"  R = {rate}/s: ideal {ideal:.1f} s, job {job['median_s']:.1f} s ({job['median_s'] / ideal - 1:+.1%}), "
                f"naive loop {naive:.1f} s",
                flush=True,
            )
            results[f"R={rate}/s"] = {
                "ideal_s": ideal,
                "job": job,
                "naive_loop_s": round(naive, 2),
                "concurrency": concurrency,
            }
    finally:
        server.stop()
    return results
