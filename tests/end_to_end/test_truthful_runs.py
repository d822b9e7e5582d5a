"""Every run tells the truth: one finish line whatever ends it, stops that stop within a second,
probes that never disturb a start, output to a reader that leaves, and failures recorded.

The bin/ scripts run as subprocesses in cron's bare environment, against real SQLite files.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from lib.db import connect
from lib.migration import migrate_all
from tests.builders import Dataset
from tests.conftest import BIN, cron_environment, ecourts_environment, run_script, start_script
from tests.helpers import finishes, last_finish, ledger_lines, wait_for_log_event, wait_until
from tests.smtp_server import Recorder, free_port

STOP_WITHIN = 1.5  # seconds from the signal (or the limit's expiry) to the process's exit
FILLER_ROWS = 2_000_000  # enough for integrity_check to take seconds, built in about two


def some_work(dataset: Dataset, users: int = 3) -> None:
    case = dataset.case()
    for _ in range(users):
        dataset.task(case, dataset.user(), due_date="2026-11-20")


def dump(database_path: Path) -> list[str]:
    """The database's whole content as SQL text (bytes on disk move with WAL checkpoints)."""
    connection = sqlite3.connect(database_path)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


def runs_of(home: Path, job: str, pid: int) -> tuple[list[dict], list[dict]]:
    """Return the start and finish lines the process pid wrote."""
    lines = [line for line in ledger_lines(home, job) if line.get("pid") == pid]
    return [line for line in lines if line["event"] == "start"], [line for line in lines if line["event"] == "finish"]


# --- SIGTERM at random instants -------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_at_random_instants_leaves_exactly_one_finish_line(home: Path, dataset: Dataset) -> None:
    some_work(dataset)
    slow = {"CASEJOBS_DEBUG_ITEM_DELAY_MS": "25"}
    started = time.monotonic()
    assert run_script("user-pending-refresh", home=home, **slow).returncode == 0
    whole_run = time.monotonic() - started
    instants = [0.0, 0.01, 0.03, 0.06, 0.1] + [random.Random(9).uniform(0, whole_run) for _ in range(45)]

    outcomes = []
    for instant in instants:
        process = subprocess.Popen(
            [str(BIN / "user-pending-refresh")],
            env=cron_environment(home, **slow),
            cwd="/",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + instant
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.002)  # the instant is the point of the test: drawn, not waited for
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        starts, ends = runs_of(home, "userPendingRefresh", process.pid)
        if starts:
            assert len(ends) == 1 and ends[0]["run_id"] == starts[0]["run_id"], (instant, code, starts, ends)
        else:
            assert len(ends) <= 1, (instant, ends)  # none only when it died before its start
        if code == 143:
            assert ends and ends[0]["status"] == "interrupted", (instant, ends)
        assert code in (0, 143, -signal.SIGTERM), (instant, code)
        outcomes.append(code)

    assert 143 in outcomes  # most instants land inside the run
    assert run_script("user-pending-refresh", home=home).returncode == 0
    assert last_finish(home, "userPendingRefresh")["status"] == "success"


# --- Stops while waiting --------------------------------------------------------------------

STOPS = [("SIGTERM", 143, "interrupted"), ("SIGINT", 130, "interrupted"), ("timeout", 124, "timeout")]


def stop_and_time(process: subprocess.Popen[str], how: str, limit_started: float) -> float:
    """Stop the process as `how` says; return seconds from the signal (or the limit's expiry) to its exit."""
    if how == "timeout":
        process.wait(timeout=60)
        return time.monotonic() - (limit_started + 1.0)
    sent = time.monotonic()
    process.send_signal(getattr(signal, how))
    process.wait(timeout=60)
    return time.monotonic() - sent


def run_and_stop(
    home: Path, script: str, arguments: list[str], event: str, how: str, **environment: str
) -> tuple[int, float]:
    """Start script; once it logs event, stop it as `how` says (a signal, or a one-second limit);
    return its exit code and the seconds from the signal (or the limit's expiry) to its exit."""
    limit = ["--max-runtime", "1"] if how == "timeout" else []
    process = start_script(script, *arguments, "--log-format", "json", *limit, home=home, **environment)
    try:
        limit_started = time.monotonic()
        wait_for_log_event(process, event)
        took = stop_and_time(process, how, limit_started)
    finally:
        process.kill()
        process.communicate()
    return process.returncode, took


@pytest.mark.parametrize(("how", "exit_code", "status"), STOPS)
def test_a_stop_ends_the_wait_for_the_write_lock(
    home: Path, dataset: Dataset, database_path: Path, how: str, exit_code: int, status: str
) -> None:
    some_work(dataset)
    before = dump(database_path)
    with _holding_lock(database_path):
        # "writing summaries": now it waits for the lock we hold
        code, took = run_and_stop(home, "user-pending-refresh", ["-v"], "writing summaries", how)

    assert code == exit_code
    assert took < STOP_WITHIN, took
    finish = last_finish(home, "userPendingRefresh")
    assert (finish["status"], finish["exit_code"]) == (status, exit_code)
    assert dump(database_path) == before  # nothing written: not even the audit row, the lock was never free


class _holding_lock:
    """Hold the database's write lock from another connection for the block."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> sqlite3.Connection:
        self.connection = sqlite3.connect(self.path, isolation_level=None)
        self.connection.execute("BEGIN IMMEDIATE")
        return self.connection

    def __exit__(self, *exception: object) -> None:
        self.connection.execute("ROLLBACK")
        self.connection.close()


@pytest.fixture(scope="module")
def big_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A casejobs database with a two-million-row table beside the data: integrity_check takes seconds."""
    path = tmp_path_factory.mktemp("big") / "casejobs.db"
    database = connect(path, create=True)
    migrate_all(database)
    database.close()
    connection = sqlite3.connect(path)
    connection.executescript(
        f"""
        CREATE TABLE filler (id INTEGER PRIMARY KEY, a TEXT, b INTEGER);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {FILLER_ROWS})
        INSERT INTO filler (a, b) SELECT printf('%08x', (i * 2654435761) % 4294967296), i % 1000 FROM n;
        CREATE INDEX filler_a ON filler (a);
        CREATE INDEX filler_b ON filler (b, a);
        INSERT INTO users (name, email, role) VALUES ('Asha', 'asha@firm.example', 'LAWYER');
        INSERT INTO cases (case_number, status, lawyer_id) VALUES ('CASE-2026-000001', 'OPEN', 1);
        """
    )
    connection.commit()
    connection.close()
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("how", "exit_code", "status"), STOPS)
def test_a_stop_ends_a_long_integrity_check(
    home: Path, big_database: Path, how: str, exit_code: int, status: str
) -> None:
    database_path = home / "casejobs.db"
    database_path.write_bytes(big_database.read_bytes())
    # "database copied": the full integrity_check of the copy now runs for seconds
    code, took = run_and_stop(
        home, "nightly-backup", [], "database copied", how, CASEJOBS_BACKUP_FULL_CHECK_DAY="every"
    )

    assert code == exit_code
    assert took < STOP_WITHIN, took
    assert last_finish(home, "nightlyBackup")["status"] == status
    assert list((home / "backups").iterdir()) == []  # no package, no temporary copy left


# --- Probes never disturb -------------------------------------------------------------------


@pytest.mark.slow
def test_probes_never_make_a_start_locked(home: Path, dataset: Dataset) -> None:
    some_work(dataset)
    probes_done = 0
    starts_done = 0
    stop = threading.Event()
    lock = threading.Lock()

    def probe(arguments: list[str]) -> None:
        nonlocal probes_done
        while not stop.is_set():
            assert run_script(*arguments, home=home).returncode in (0, 1, 2)
            with lock:
                probes_done += 1

    threads = [
        threading.Thread(target=probe, args=(["jobstats", "--json"],)),
        threading.Thread(target=probe, args=(["jobctl", "status", "--json"],)),
    ]
    for thread in threads:
        thread.start()
    try:
        while starts_done < 50 or probes_done < 200:
            result = run_script("user-pending-refresh", home=home)
            assert result.returncode == 0, result.stderr
            starts_done += 1
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    statuses = [line["status"] for line in finishes(home, "userPendingRefresh")]
    assert len(statuses) >= 50 and set(statuses) == {"success"}
    assert not (home / "lock" / "userPendingRefresh.pid").exists()


# --- Output to a reader that leaves ---------------------------------------------------------

SIM = {"CASEJOBS_ECOURTS_BASE_URL": "sim://", "CASEJOBS_ECOURTS_TOKEN": "demo-token"}
COMMANDS = [
    ("user-pending-refresh", "--log-format", "console"),
    ("user-pending-refresh", "--dry-run"),
    ("sla-check", "--dry-run"),
    ("sla-check",),
    ("daily-sync", "--dry-run"),
    ("nightly-backup",),
    ("jobstats",),
    ("jobstats", "--json"),
    ("jobstats", "--check"),
    ("jobctl", "status"),
    ("jobctl", "run", "daily-sync", "--dry-run"),
    ("jobctl", "install", "--dry-run", "--cron-flavor", "debian", "--host-tz", "UTC"),
    ("jobctl", "--help"),
    ("sla-check", "--help"),
]


def exit_with_output_to(destination: str, home: Path, command: tuple[str, ...]) -> int:
    """Run the command with stdout and stderr into a reader that leaves (`head -1`) or /dev/null;
    return the command's own exit status (PIPESTATUS[0])."""
    script = " ".join(f"'{part}'" for part in (str(BIN / command[0]), *command[1:]))
    shell = (
        f"{script} >/dev/null 2>&1; echo $?"
        if destination == "null"
        else f"{script} 2>&1 | head -1 >/dev/null; echo ${{PIPESTATUS[0]}}"
    )
    result = subprocess.run(
        ["bash", "-c", shell], env=cron_environment(home, **SIM), cwd="/", capture_output=True, text=True, timeout=120
    )
    return int(result.stdout.strip().splitlines()[-1])


def exit_with_reader_gone(home: Path, command: tuple[str, ...]) -> int:
    """Run the command with both outputs into a pipe whose reader is gone before the first write."""
    process = subprocess.Popen(
        [str(BIN / command[0]), *command[1:]],
        env=cron_environment(home, **SIM),
        cwd="/",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    process.stdout.close()  # every write the command makes meets a closed pipe
    return process.wait(timeout=120)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_reader_that_leaves_changes_nothing(home: Path, dataset: Dataset, command: tuple[str, ...]) -> None:
    some_work(dataset, users=30)
    job_ledgers = ("userPendingRefresh", "slaCheck", "dailySync", "nightlyBackup")

    expected = exit_with_output_to("null", home, command)
    recorded = {job: len(finishes(home, job)) for job in job_ledgers}
    with_head = exit_with_output_to("head", home, command)
    gone = exit_with_reader_gone(home, command)

    assert with_head == expected and gone == expected, (expected, with_head, gone)
    for job in job_ledgers:
        lines = finishes(home, job)
        new = lines[recorded[job] :]
        if recorded[job]:  # the command runs this job: each later run is recorded too, as it really ended
            assert len(new) == 2, (job, new)
            assert {line["status"] for line in new} <= {"success", "skipped", "partial"}
        starts = [line for line in ledger_lines(home, job) if line["event"] == "start"]
        assert len(starts) <= len(lines)  # no start without its finish


# --- Failures that are recorded -------------------------------------------------------------


def test_a_malformed_ping_url_is_a_configuration_error_naming_it(home: Path, dataset: Dataset) -> None:
    some_work(dataset)
    result = run_script("user-pending-refresh", home=home, CASEJOBS_MONITOR_USER_PENDING_REFRESH_URL="http://[::1")

    assert result.returncode == 78
    assert "CASEJOBS_MONITOR_USER_PENDING_REFRESH_URL" in result.stderr and "[::1" not in result.stderr
    (line,) = ledger_lines(home, "userPendingRefresh")
    assert (line["status"], line["exit_code"]) == ("config", 78)


@pytest.mark.parametrize("url", ["http://monitor.example/ping/abc", "ftp://127.0.0.1/x", "not a url"])
def test_ping_urls_must_be_https_unless_loopback(home: Path, dataset: Dataset, url: str) -> None:
    result = run_script("user-pending-refresh", home=home, CASEJOBS_MONITOR_USER_PENDING_REFRESH_URL=url)
    assert result.returncode == 78 and "CASEJOBS_MONITOR_USER_PENDING_REFRESH_URL" in result.stderr


def test_a_configuration_error_is_recorded_and_checked(home: Path, database_path: Path) -> None:
    cron = {"CASEJOBS_NOW": "2026-11-29T06:30:00+05:30"}
    result = run_script("daily-sync", "--trigger", "cron", home=home, **cron)

    assert result.returncode == 78
    (line,) = ledger_lines(home, "dailySync")
    assert (line["event"], line["status"], line["trigger"]) == ("finish", "config", "cron")
    assert line["ts"] == "2026-11-29T01:00:00.000Z"
    check = run_script("jobstats", "--check", "--job", "dailySync", home=home, CASEJOBS_NOW="2026-11-29T07:00:00+05:30")
    assert check.returncode == 2
    assert (
        "CRITICAL dailySync: configuration error since 06:30 IST: CASEJOBS_ECOURTS_BASE_URL is not set" in check.stdout
    )
    status = json.loads(run_script("jobctl", "status", "--json", home=home, **cron).stdout)
    assert status["jobs"]["dailySync"]["last_run"]["status"] == "config"


def test_a_clock_outside_the_ledger_years_is_refused(home: Path, dataset: Dataset) -> None:
    result = run_script("user-pending-refresh", home=home, CASEJOBS_NOW="9999-12-31T23:59:59+00:00")

    assert result.returncode == 78 and "CASEJOBS_NOW" in result.stderr
    (line,) = ledger_lines(home, "userPendingRefresh")
    assert line["status"] == "config" and not line["ts"].startswith("9999")
    assert run_script("jobstats", "--check", home=home).returncode in (1, 2)  # read, not broken


def test_a_home_that_does_not_exist_gets_no_line_and_no_folder(tmp_path: Path) -> None:
    home = tmp_path / "nowhere"
    result = run_script("daily-sync", home=home)
    assert result.returncode == 78 and not home.exists()


def test_an_exclusively_locked_database_is_a_recorded_runtime_failure(
    home: Path, dataset: Dataset, database_path: Path
) -> None:
    some_work(dataset)
    dataset.connection.close()  # the application is the only other program with the file open
    application = sqlite3.connect(database_path, isolation_level=None)
    application.execute("PRAGMA locking_mode = EXCLUSIVE")
    application.execute("BEGIN EXCLUSIVE")
    application.execute("SELECT count(*) FROM users").fetchone()
    try:
        result = run_script("user-pending-refresh", home=home, CASEJOBS_BUSY_TIMEOUT_MS="500")
    finally:
        application.execute("COMMIT")
        application.close()

    assert result.returncode == 1, result.stderr
    line = last_finish(home, "userPendingRefresh")
    assert (line["status"], line["exit_code"]) == ("failed", 1)
    assert line["error"] == "the database is locked by another program"
    assert run_script("user-pending-refresh", home=home).returncode == 0  # transient: the next run works


def test_a_cut_last_line_does_not_swallow_the_next_start(home: Path, dataset: Dataset) -> None:
    some_work(dataset)
    assert run_script("user-pending-refresh", home=home, CASEJOBS_NOW="2026-11-25T10:00:00Z").returncode == 0
    month = home / "ledger" / "userPendingRefresh" / "2026-11.jsonl"
    with month.open("ab") as handle:
        handle.write(b'{"v": 1, "event": "start", "run_id": "cut-by-a-cra')  # a crash mid-line

    assert run_script("user-pending-refresh", home=home, CASEJOBS_NOW="2026-11-25T10:05:00Z").returncode == 0

    events = [line["event"] for line in ledger_lines(home, "userPendingRefresh")]
    assert events == ["start", "finish", "start", "finish"]
    stats = run_script("jobstats", "--json", home=home, CASEJOBS_NOW="2026-11-25T10:06:00Z")
    assert json.loads(stats.stdout)["damaged_lines"] == 1
    assert json.loads(stats.stdout)["jobs"]["userPendingRefresh"]["status_counts"]["success"] == 2


# --- Stops while waiting on eCourts, SMTP and pacing ----------------------------------------

CNRS = [f"MHAU01{number:06d}2023" for number in range(100, 104)]


def sync_cases(dataset: Dataset) -> list[int]:
    lawyer = dataset.user()
    return [dataset.case(lawyer_id=lawyer, cnr=cnr) for cnr in CNRS]


def synced(database_path: Path) -> int:
    connection = sqlite3.connect(database_path)
    try:
        return connection.execute("SELECT count(*) FROM cases WHERE last_synced_at IS NOT NULL").fetchone()[0]
    finally:
        connection.close()


@pytest.mark.parametrize("wait", ["an answer", "pacing"])
def test_a_stop_ends_a_wait_on_ecourts(home: Path, dataset: Dataset, ecourts, database_path: Path, wait: str) -> None:
    simulator, server = ecourts
    sync_cases(dataset)
    if wait == "an answer":
        simulator.latency = 20  # every answer takes 20 s
        settings = ecourts_environment(server, CASEJOBS_ECOURTS_READ_TIMEOUT="60")
    else:
        settings = ecourts_environment(server, CASEJOBS_ECOURTS_RATE_PER_MINUTE="1")  # 60 s between requests
    process = start_script("daily-sync", "--log-format", "json", home=home, **settings)
    try:
        if wait == "an answer":
            wait_until(lambda: simulator.log, what="the first request")
        else:
            wait_for_log_event(process, "case synced")  # the second request now waits its turn for a minute
        took = stop_and_time(process, "SIGTERM", 0)
    finally:
        process.kill()
        process.communicate()

    assert process.returncode == 143 and took < STOP_WITHIN, took
    assert last_finish(home, "dailySync")["status"] == "interrupted"
    assert synced(database_path) == (0 if wait == "an answer" else 1)  # the case in flight is untouched


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never says a word (a hung SMTP server)."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.accepted = threading.Event()
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.socket.accept()
                self.connections.append(connection)
                self.accepted.set()

    def stop(self) -> None:
        self.socket.close()
        for connection in self.connections:
            connection.close()
        self._thread.join(timeout=5)


def test_a_stop_ends_a_wait_on_a_hung_smtp_server(home: Path, dataset: Dataset, database_path: Path) -> None:
    case = dataset.case(lawyer_id=dataset.user(), expected_completion_date="2026-11-20")
    dataset.task(case, dataset.user(), due_date="2026-11-21")
    server = SilentServer()
    try:
        smtp = {"CASEJOBS_SMTP_HOST": "127.0.0.1", "CASEJOBS_SMTP_PORT": str(server.port)}
        smtp |= {
            "CASEJOBS_SMTP_SECURITY": "none",
            "CASEJOBS_SMTP_TIMEOUT": "60",
            "CASEJOBS_NOW": "2026-11-25T12:00:00Z",
        }
        process = start_script("sla-check", home=home, **smtp)
        try:
            assert server.accepted.wait(60)  # the job waits for a greeting that never comes
            took = stop_and_time(process, "SIGTERM", 0)
        finally:
            process.kill()
            process.communicate()
    finally:
        server.stop()

    assert process.returncode == 143 and took < STOP_WITHIN, took
    assert last_finish(home, "slaCheck")["status"] == "interrupted"
    connection = sqlite3.connect(database_path)
    statuses = [row[0] for row in connection.execute("SELECT email_status FROM notifications")]
    connection.close()
    assert statuses and None in statuses  # stored, its mail left for the next run (never marked SENT)


class _SlowToAccept(Recorder):
    """An SMTP handler that tells the test when a message's data arrived, then accepts it a moment later."""

    def __init__(self) -> None:
        super().__init__()
        self.data_arrived = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.data_arrived.set()
        await asyncio.sleep(0.05)  # the stop lands while the job waits for this answer
        return await super().handle_DATA(server, session, envelope)


def test_a_mail_the_server_accepts_during_the_stop_is_recorded_sent(
    home: Path, dataset: Dataset, database_path: Path
) -> None:
    for number in range(3):
        dataset.case(
            lawyer_id=dataset.user(email=f"lawyer{number}@firm.example"), expected_completion_date="2026-11-20"
        )
    handler = _SlowToAccept()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        smtp = {"CASEJOBS_SMTP_HOST": "127.0.0.1", "CASEJOBS_SMTP_PORT": str(controller.port)}
        smtp |= {"CASEJOBS_SMTP_SECURITY": "none", "CASEJOBS_NOW": "2026-11-25T12:00:00Z"}
        process = start_script("sla-check", home=home, **smtp)
        try:
            assert handler.data_arrived.wait(60)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        finally:
            process.kill()
            process.communicate()
    finally:
        controller.stop()

    assert process.returncode == 143
    connection = sqlite3.connect(database_path)
    statuses = [row[0] for row in connection.execute("SELECT email_status FROM notifications ORDER BY id")]
    connection.close()
    assert len(handler.messages) == 1 and statuses[0] == "SENT"  # the server took it: recorded as sent
    assert statuses[1:] == [None, None][: len(statuses) - 1]  # the rest are left for the next run


def test_a_second_ctrl_c_still_writes_the_interrupted_line(home: Path, dataset: Dataset, database_path: Path) -> None:
    some_work(dataset)
    with _holding_lock(database_path):
        process = start_script("user-pending-refresh", "-v", "--log-format", "json", home=home)
        try:
            wait_for_log_event(process, "writing summaries")
            sent = time.monotonic()
            process.send_signal(signal.SIGINT)
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
            took = time.monotonic() - sent
        finally:
            process.kill()
            process.communicate()

    assert process.returncode == 130 and took < STOP_WITHIN, took
    finish = last_finish(home, "userPendingRefresh")
    assert (finish["status"], finish["exit_code"]) == ("interrupted", 130)
