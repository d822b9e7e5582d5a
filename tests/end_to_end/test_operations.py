"""bin/jobctl operations against real system tools: crontab, cron, systemd-analyze; and monitoring pings."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from jobs import REGISTRY
from tests.builders import Dataset
from tests.conftest import BIN, run_script, start_script
from tests.helpers import ledger_lines, make_the_refresh_fail, wait_for_log_event
from tests.smtp_server import free_port

FOREIGN = "# the firm's own jobs\nMAILTO=it@firm.example\n15 2 * * 1 /usr/local/bin/weekly-report --all\n"
needs_crontab = pytest.mark.skipif(
    shutil.which("crontab") is None, reason="needs the crontab program (.ci/run installs cron)"
)


def crontab_text() -> str:
    result = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
    return result.stdout if result.returncode == 0 else ""


@needs_crontab
def test_install_keeps_foreign_lines_and_uninstall_restores_them_byte_for_byte(home: Path, user_crontab) -> None:
    subprocess.run(["crontab", "-"], input=FOREIGN, text=True, check=True)

    first = run_script("jobctl", "install", "--cron-flavor", "debian", "--host-tz", "UTC", home=home)
    after_first = crontab_text()
    second = run_script("jobctl", "install", "--cron-flavor", "debian", "--host-tz", "UTC", home=home)

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "already installed" in second.stdout
    assert crontab_text() == after_first
    assert after_first.startswith(FOREIGN)
    assert "# BEGIN casejobs" in after_first and after_first.rstrip().endswith("# END casejobs")
    assert (
        f"0 1 * * * umask 077; CASEJOBS_HOME={home} {BIN / 'run-job'} daily-sync --trigger cron >> {home / 'log' / 'daily-sync.log'} 2>&1"
        in after_first
    )
    assert "@reboot" in after_first and "catch-up" in after_first

    dry = run_script("jobctl", "uninstall", "--dry-run", home=home)

    assert dry.returncode == 0 and "would remove the casejobs block" in dry.stdout
    assert "daily-sync --trigger cron" in dry.stdout
    assert crontab_text() == after_first  # a dry run changes nothing

    removed = run_script("jobctl", "uninstall", home=home)

    assert removed.returncode == 0
    assert crontab_text() == FOREIGN


@needs_crontab
def test_a_shell_naming_another_home_is_told_whose_schedule_is_installed(
    home: Path, tmp_path: Path, user_crontab
) -> None:
    installed = run_script("jobctl", "install", "--cron-flavor", "debian", "--host-tz", "UTC", home=home)
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "wrong-home"
    elsewhere.mkdir()

    status = run_script("jobctl", "status", home=elsewhere)
    doctor = run_script("jobctl", "doctor", "--json", home=elsewhere)

    assert f"schedule: installed for CASEJOBS_HOME={home}, not this shell's {elsewhere}" in status.stdout
    assert "differs from crontab.ist" not in status.stdout  # reinstalling would move the firm's schedule
    (check,) = [check for check in json.loads(doctor.stdout)["checks"] if check["name"] == "schedule"]
    assert f"CASEJOBS_HOME={home}, not {elsewhere}" in check["message"]
    assert check["fix"].startswith(f"set CASEJOBS_HOME={home}")
    before = crontab_text()
    never_created = tmp_path / "never-created"
    moved = run_script("jobctl", "install", "--cron-flavor", "debian", "--host-tz", "UTC", home=never_created)
    assert moved.returncode == 78 and "bin/jobctl uninstall first to move it here" in moved.stderr, moved.stderr
    assert crontab_text() == before  # the firm's schedule is not taken over by a shell with the wrong home
    assert not never_created.exists()  # refused before anything was written


@needs_crontab
def test_cron_tz_is_written_where_it_is_honoured(home: Path, user_crontab) -> None:
    result = run_script(
        "jobctl", "install", "--dry-run", "--cron-flavor", "cronie", "--host-tz", "America/New_York", home=home
    )
    assert result.returncode == 0
    assert "CRON_TZ=Asia/Kolkata" in result.stdout and "30 6 * * * " in result.stdout
    assert "# BEGIN casejobs" not in crontab_text()  # a dry run changes nothing


def test_install_refuses_when_crontab_cannot_be_read(home: Path, tmp_path: Path) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake = fake_bin / "crontab"
    fake.write_text("#!/bin/sh\necho 'crontab: permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)

    result = run_script("jobctl", "install", "--cron-flavor", "debian", home=home, PATH=f"{fake_bin}:/usr/bin:/bin")

    assert result.returncode == 1
    assert "crontab -l failed, so nothing was touched: crontab: permission denied" in result.stderr


def test_export_systemd_calendars_are_accepted(home: Path, tmp_path: Path) -> None:
    result = run_script("jobctl", "export", "--format", "systemd", "--out", str(tmp_path), home=home)
    assert result.returncode == 0, result.stderr
    timers = sorted(tmp_path.glob("*.timer"))
    assert [timer.name for timer in timers] == [
        "casejobs-backup-drill.timer",
        "casejobs-daily-sync.timer",
        "casejobs-nightly-backup.timer",
        "casejobs-sla-check.timer",
        "casejobs-user-pending-refresh.timer",
        "casejobs-weekly-report.timer",
    ]
    calendars = [
        line.split("=", 1)[1]
        for timer in timers
        for line in timer.read_text().splitlines()
        if line.startswith("OnCalendar=")
    ]
    assert "*-*-* 06:30:00 Asia/Kolkata" in calendars and "*-*-* *:00/5:00 Asia/Kolkata" in calendars
    assert "Sun *-*-* 03:00:00 Asia/Kolkata" in calendars
    assert all("Persistent=true" in timer.read_text() for timer in timers)
    if shutil.which("systemd-analyze"):
        for calendar in calendars:
            check = subprocess.run(
                ["systemd-analyze", "calendar", calendar], capture_output=True, text=True, check=False
            )
            assert check.returncode == 0, (calendar, check.stderr)


def test_export_systemd_quotes_a_home_with_a_space_or_a_percent_and_refuses_a_forged_user(
    tmp_path: Path,
) -> None:
    home = tmp_path / "firm files 100%done"
    home.mkdir()
    out = tmp_path / "units"

    result = run_script("jobctl", "export", "--format", "systemd", "--out", str(out), home=home)
    forged = run_script(
        "jobctl",
        "export",
        "--format",
        "systemd",
        "--out",
        str(tmp_path / "forged"),
        "--user",
        "root\nExecStartPre=/bin/id",
        home=home,
    )

    assert result.returncode == 0, result.stderr
    service = (out / "casejobs-daily-sync.service").read_text().splitlines()
    assert f'Environment="CASEJOBS_HOME={str(home).replace("%", "%%")}"' in service
    assert forged.returncode == 2 and "is not an account name" in forged.stderr
    assert not (tmp_path / "forged").exists()
    if shutil.which("systemd-analyze"):
        check = subprocess.run(
            ["systemd-analyze", "verify", str(out / "casejobs-daily-sync.service")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert "Invalid environment assignment" not in check.stderr and "specifier" not in check.stderr, check.stderr


def test_export_windows_tasks_are_utf16_xml_pinned_to_ist(home: Path, tmp_path: Path) -> None:
    assert run_script("jobctl", "export", "--format", "windows", "--out", str(tmp_path), home=home).returncode == 0
    namespace = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    for path in tmp_path.glob("*.xml"):
        data = path.read_bytes()
        assert data.startswith(b"\xff\xfe")  # UTF-16 (little endian) with its byte-order mark
        root = ElementTree.fromstring(data.decode("utf-16"))
        assert root.find("t:Triggers/t:CalendarTrigger/t:StartBoundary", namespace).text.endswith("+05:30")
        assert root.find("t:Settings/t:MultipleInstancesPolicy", namespace).text == "IgnoreNew"
        assert root.find("t:Settings/t:StartWhenAvailable", namespace).text == "true"
        assert root.find("t:Settings/t:ExecutionTimeLimit", namespace).text.startswith("PT")
    refresh = ElementTree.fromstring((tmp_path / "casejobs-user-pending-refresh.xml").read_bytes().decode("utf-16"))
    assert refresh.find("t:Triggers/t:CalendarTrigger/t:Repetition/t:Interval", namespace).text == "PT5M"
    backup = ElementTree.fromstring((tmp_path / "casejobs-nightly-backup.xml").read_bytes().decode("utf-16"))
    assert backup.find("t:Triggers/t:CalendarTrigger/t:StartBoundary", namespace).text == "2026-01-01T23:30:00+05:30"


def exported(home: Path, tmp_path: Path, export_format: str, *arguments: str, **environment: str) -> Path:
    folder = tmp_path / export_format
    result = run_script(
        "jobctl", "export", "--format", export_format, "--out", str(folder), *arguments, home=home, **environment
    )
    assert result.returncode == 0, result.stderr
    return folder


def kill_limits(home: Path, tmp_path: Path, **environment: str) -> dict[str, dict[str, int]]:
    """Each target's kill limit for each job, read back from the exported files (seconds)."""
    namespace = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    limits: dict[str, dict[str, int]] = {"systemd": {}, "windows": {}, "k8s": {}}
    for spec in REGISTRY:
        service = (exported(home, tmp_path, "systemd", **environment) / f"casejobs-{spec.script}.service").read_text()
        limits["systemd"][spec.name] = int(re.search(r"^TimeoutStartSec=(\d+)$", service, flags=re.M).group(1))
        task = ElementTree.fromstring(
            (exported(home, tmp_path, "windows", **environment) / f"casejobs-{spec.script}.xml")
            .read_bytes()
            .decode("utf-16")
        )
        text = task.find("t:Settings/t:ExecutionTimeLimit", namespace).text
        limits["windows"][spec.name] = int(re.fullmatch(r"PT(\d+)S", text).group(1))
        manifest = yaml.safe_load(
            (exported(home, tmp_path, "k8s", **environment) / f"casejobs-{spec.script}.yaml").read_text()
        )
        limits["k8s"][spec.name] = manifest["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
    return limits


def test_every_scheduler_kills_a_job_only_after_it_stopped_itself(home: Path, tmp_path: Path) -> None:
    for target, by_job in kill_limits(home, tmp_path).items():
        for spec in REGISTRY:
            assert spec.time_limit + 60 <= by_job[spec.name], (target, spec.name)
    overridden = kill_limits(home, tmp_path / "override", CASEJOBS_MAX_RUNTIME="20000")
    assert all(limit > 20000 for by_job in overridden.values() for limit in by_job.values())


def test_windows_tasks_run_hidden_as_the_account_without_anyone_logged_on(home: Path, tmp_path: Path) -> None:
    folder = exported(home, tmp_path, "windows", "--user", "FIRM\\casejobs", "--windows-project", "D:\\casejobs")
    namespace = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    for spec in REGISTRY:
        data = (folder / f"casejobs-{spec.script}.xml").read_bytes()
        assert data.startswith(b"\xff\xfe")
        task = ElementTree.fromstring(data.decode("utf-16"))
        assert task.find("t:Principals/t:Principal/t:UserId", namespace).text == "FIRM\\casejobs"
        assert task.find("t:Principals/t:Principal/t:LogonType", namespace).text == "S4U"
        assert task.find("t:Principals/t:Principal/t:RunLevel", namespace).text == "LeastPrivilege"
        assert task.find("t:Settings/t:Hidden", namespace).text == "true"
        assert (
            task.find("t:Actions/t:Exec/t:Command", namespace).text
            == "D:\\casejobs\\.venv\\Scripts\\casejobs-run-job.exe"
        )
        assert task.find("t:Actions/t:Exec/t:Arguments", namespace).text == f"{spec.script} --trigger cron --log-file"
    password = exported(home, tmp_path / "password", "windows", "--windows-logon", "password")
    task = ElementTree.fromstring((password / "casejobs-daily-sync.xml").read_bytes().decode("utf-16"))
    assert task.find("t:Principals/t:Principal/t:LogonType", namespace).text == "Password"


def test_install_on_windows_dry_run_prints_one_schtasks_per_job(home: Path) -> None:
    result = run_script("jobctl", "install", "--scheduler", "windows", "--dry-run", home=home)
    refused = run_script("jobctl", "install", "--scheduler", "windows", home=home)
    removal = run_script("jobctl", "uninstall", "--scheduler", "windows", "--dry-run", home=home)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        f"schtasks /Create /XML {home / 'export' / 'windows' / f'casejobs-{spec.script}.xml'} /TN \\casejobs\\{spec.name} /F"
        for spec in REGISTRY
    ]
    assert not (home / "export").exists()  # a dry run writes nothing
    assert "bin/jobctl export --format windows writes the same files" in result.stderr  # which it names
    assert refused.returncode == 2 and "only Windows has" in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert removal.stdout.splitlines() == [f"schtasks /Delete /TN \\casejobs\\{spec.name} /F" for spec in REGISTRY]


def test_export_kubernetes_cronjobs(home: Path, tmp_path: Path) -> None:
    assert run_script("jobctl", "export", "--format", "k8s", "--out", str(tmp_path), home=home).returncode == 0
    manifest = yaml.safe_load((tmp_path / "casejobs-sla-check.yaml").read_text())
    assert manifest["kind"] == "CronJob"
    assert manifest["spec"]["schedule"] == "0 18 * * *"
    assert manifest["spec"]["timeZone"] == "Asia/Kolkata"
    assert manifest["spec"]["concurrencyPolicy"] == "Forbid"
    assert manifest["spec"]["startingDeadlineSeconds"] > 0


def seeded_home(home: Path, dataset: Dataset) -> None:
    dataset.task(dataset.case(), dataset.user(), due_date="2026-11-20")


def ledger(home: Path, job: str) -> list[dict]:
    return ledger_lines(home, job)


def test_catch_up_after_a_week_switched_off_runs_each_job_once(home: Path, dataset: Dataset) -> None:
    seeded_home(home, dataset)
    sim = {"CASEJOBS_ECOURTS_BASE_URL": "sim://", "CASEJOBS_ECOURTS_TOKEN": "demo-token"}
    week_ago = "2026-11-18T23:45:00+05:30"
    for script in ("daily-sync", "sla-check", "nightly-backup", "user-pending-refresh"):
        assert run_script(script, "--trigger", "cron", home=home, CASEJOBS_NOW=week_ago, **sim).returncode == 0

    result = run_script("jobctl", "catch-up", home=home, CASEJOBS_NOW="2026-11-25T23:45:00+05:30", **sim)
    again = run_script("jobctl", "catch-up", home=home, CASEJOBS_NOW="2026-11-25T23:50:00+05:30", **sim)

    assert result.returncode == 0, result.stdout + result.stderr
    for job in ("dailySync", "slaCheck", "nightlyBackup", "userPendingRefresh"):
        catchups = [line for line in ledger(home, job) if line["event"] == "finish" and line["trigger"] == "catchup"]
        assert len(catchups) == 1 and catchups[0]["status"] == "success", job
    assert "dailySync: 7 slots missed; running it once" in result.stdout
    assert again.returncode == 0 and "running it once" not in again.stdout


def test_jobstats_check_reports_problems_for_monitoring(home: Path, dataset: Dataset) -> None:
    seeded_home(home, dataset)
    assert run_script("user-pending-refresh", home=home, CASEJOBS_NOW="2026-11-25T12:00:00+05:30").returncode == 0

    def check(now: str) -> subprocess.CompletedProcess[str]:
        return run_script("jobstats", "--check", "--job", "userPendingRefresh", home=home, CASEJOBS_NOW=now)

    fine, one_missed, many_missed = (
        check("2026-11-25T12:09:00+05:30"),
        check("2026-11-25T12:16:00+05:30"),
        check("2026-11-25T13:00:00+05:30"),
    )

    assert (fine.returncode, fine.stdout.strip()) == (0, "OK all jobs on schedule")
    assert (
        one_missed.returncode == 1
        and "WARNING userPendingRefresh: its last scheduled run was missed" in one_missed.stdout
    )
    assert many_missed.returncode == 2 and "CRITICAL userPendingRefresh: 10 scheduled runs missed" in many_missed.stdout
    stats = json.loads(run_script("jobstats", "--json", home=home, CASEJOBS_NOW="2026-11-25T13:00:00+05:30").stdout)
    assert stats["jobs"]["userPendingRefresh"]["overdue"] is True


def test_a_failed_last_run_is_critical(home: Path, database_path: Path) -> None:
    make_the_refresh_fail(database_path)
    assert run_script("user-pending-refresh", home=home).returncode == 1

    result = run_script("jobstats", "--check", "--job", "user-pending-refresh", home=home)

    assert result.returncode == 2 and "CRITICAL userPendingRefresh: last run failed" in result.stdout


def test_a_second_cron_start_in_the_same_ist_slot_is_skipped(home: Path, dataset: Dataset) -> None:
    seeded_home(home, dataset)
    first = run_script("sla-check", "--trigger", "cron", home=home, CASEJOBS_NOW="2026-11-25T18:00:05+05:30")
    second = run_script("sla-check", "--trigger", "cron", home=home, CASEJOBS_NOW="2026-11-25T19:00:00+05:30")
    manual = run_script("sla-check", home=home, CASEJOBS_NOW="2026-11-25T19:01:00+05:30")

    assert (first.returncode, second.returncode, manual.returncode) == (0, 0, 0)
    statuses = [(line["trigger"], line["status"]) for line in ledger(home, "slaCheck") if line["event"] == "finish"]
    assert statuses == [("cron", "success"), ("cron", "skipped"), ("manual", "success")]
    assert "2026-11-25T18:00+05:30 slot already ran" in ledger(home, "slaCheck")[2]["details"]["reason"]


def test_status_says_what_runs_and_what_is_overdue(home: Path, dataset: Dataset) -> None:
    seeded_home(home, dataset)
    process = start_script(
        "user-pending-refresh", "--log-format", "json", home=home, CASEJOBS_DEBUG_ITEM_DELAY_MS="300"
    )
    try:
        wait_for_log_event(process, "run started")
        result = run_script("jobctl", "status", "--json", home=home)
    finally:
        process.kill()
        process.communicate()

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["jobs"]["userPendingRefresh"]["running"] is True
    assert report["jobs"]["userPendingRefresh"]["running_pid"] == process.pid
    assert report["jobs"]["nightlyBackup"]["next_run"].endswith("23:30:00+05:30")
    assert set(report["schedule"]) == {"installed", "current", "other_home", "error"}
    assert report["generated_at"].endswith("+05:30")


def test_run_passes_the_job_its_options(home: Path, dataset: Dataset) -> None:
    seeded_home(home, dataset)
    result = run_script("jobctl", "run", "userPendingRefresh", "--dry-run", home=home)
    unknown = run_script("jobctl", "run", "nightlySink", home=home)
    job_help = run_script("jobctl", "run", "daily-sync", "-h", home=home)
    own_help = run_script("jobctl", "run", "-h", home=home)

    assert job_help.returncode == 0 and job_help.stdout.startswith("Usage: daily-sync")  # the job's own help
    assert own_help.returncode == 0 and own_help.stdout.startswith("Usage: jobctl run")
    assert result.returncode == 0 and "user 1: total 1" in result.stdout
    assert ledger(home, "userPendingRefresh")[-1]["trigger"] == "manual"
    assert unknown.returncode == 2 and "unknown job 'nightlySink'" in unknown.stderr


def test_a_dry_catch_up_with_nothing_missed_says_so(home: Path) -> None:
    (home / "installed-at").write_text("2026-11-30T04:00:00.000Z\n")  # 09:30 IST, two minutes before

    result = run_script("jobctl", "catch-up", "--dry-run", home=home, CASEJOBS_NOW="2026-11-30T09:32:00+05:30")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "nothing to catch up: no job has missed its latest slot\n", result.stdout


def uninstall_during_a_run(home: Path, dataset: Dataset, flag: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """Install, start a slow run, uninstall with flag while it works; return uninstall's result and the run's exit code."""
    seeded_home(home, dataset)
    assert run_script("jobctl", "install", "--cron-flavor", "debian", home=home).returncode == 0
    process = start_script(
        "user-pending-refresh", "--log-format", "json", home=home, CASEJOBS_DEBUG_ITEM_DELAY_MS="250"
    )
    try:
        wait_for_log_event(process, "run started")
        result = run_script("jobctl", "uninstall", flag, home=home)
        return result, process.wait(timeout=30)
    finally:
        process.kill()
        process.communicate()


@needs_crontab
def test_uninstall_stop_interrupts_a_running_job(home: Path, dataset: Dataset, user_crontab) -> None:
    result, code = uninstall_during_a_run(home, dataset, "--stop")

    assert result.returncode == 0 and "sent SIGTERM to userPendingRefresh" in result.stdout
    assert code == 143
    assert ledger(home, "userPendingRefresh")[-1]["status"] == "interrupted"
    assert "# BEGIN casejobs" not in crontab_text()


@needs_crontab
def test_uninstall_wait_lets_a_running_job_finish(home: Path, dataset: Dataset, user_crontab) -> None:
    result, code = uninstall_during_a_run(home, dataset, "--wait")

    assert result.returncode == 0 and "waiting for userPendingRefresh to finish" in result.stdout
    assert code == 0 and ledger(home, "userPendingRefresh")[-1]["status"] == "success"


class _PingRecorder(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def ping_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PingRecorder)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_monitoring_pings_start_and_finish_with_the_run_id(
    home: Path, dataset: Dataset, database_path: Path, ping_server
) -> None:
    seeded_home(home, dataset)
    url = f"http://127.0.0.1:{ping_server.server_address[1]}/ping/abc"

    ok = run_script("user-pending-refresh", home=home, CASEJOBS_MONITOR_USER_PENDING_REFRESH_URL=url)
    make_the_refresh_fail(database_path)
    failed = run_script("user-pending-refresh", home=home, CASEJOBS_MONITOR_USER_PENDING_REFRESH_URL=url)

    assert (ok.returncode, failed.returncode) == (0, 1)
    paths = [path for path, _ in ping_server.received]
    run_ids = [line["run_id"] for line in ledger(home, "userPendingRefresh") if line["event"] == "start"]
    rids = [__import__("uuid").UUID(hex=run_id) for run_id in run_ids]
    assert paths == [
        f"/ping/abc/start?rid={rids[0]}",
        f"/ping/abc?rid={rids[0]}",
        f"/ping/abc/start?rid={rids[1]}",
        f"/ping/abc/1?rid={rids[1]}",
    ]
    assert b"run finished" in ping_server.received[3][1]  # the last log lines go with the finish


def test_skipped_and_locked_runs_send_no_ping(home: Path, dataset: Dataset, ping_server) -> None:
    seeded_home(home, dataset)
    url = f"http://127.0.0.1:{ping_server.server_address[1]}/ping/abc"
    skipped = run_script(
        "user-pending-refresh", home=home, APP_MODE="server", CASEJOBS_MONITOR_USER_PENDING_REFRESH_URL=url
    )
    holder = start_script("user-pending-refresh", "--log-format", "json", home=home, CASEJOBS_DEBUG_ITEM_DELAY_MS="300")
    try:
        wait_for_log_event(holder, "run started")
        locked = run_script("user-pending-refresh", home=home, CASEJOBS_MONITOR_USER_PENDING_REFRESH_URL=url)
    finally:
        holder.kill()
        holder.communicate()

    assert (skipped.returncode, locked.returncode) == (0, 75)
    assert [line["status"] for line in ledger(home, "userPendingRefresh") if line["event"] == "finish"] == [
        "skipped",
        "locked",
    ]
    assert ping_server.received == []


def test_a_dead_ping_url_changes_nothing(home: Path, dataset: Dataset) -> None:
    seeded_home(home, dataset)
    result = run_script(
        "user-pending-refresh",
        home=home,
        CASEJOBS_MONITOR_USER_PENDING_REFRESH_URL=f"http://127.0.0.1:{free_port()}/ping",
        CASEJOBS_MONITOR_TIMEOUT="1",
    )
    assert result.returncode == 0
    assert ledger(home, "userPendingRefresh")[-1]["status"] == "success"
    assert "monitoring ping failed" in result.stderr


@pytest.mark.slow
@needs_crontab
@pytest.mark.skipif(shutil.which("cron") is None, reason="needs Debian's cron daemon (.ci/run installs it)")
def test_a_real_cron_daemon_runs_the_installed_job(home: Path, dataset: Dataset, user_crontab) -> None:
    seeded_home(home, dataset)
    assert run_script("jobctl", "install", "--cron-flavor", "debian", home=home).returncode == 0
    every_minute = f"* * * * * CASEJOBS_HOME={home} {BIN / 'user-pending-refresh'} --trigger cron >> {home / 'log' / 'test.log'} 2>&1\n"
    subprocess.run(["crontab", "-"], input=crontab_text() + every_minute, text=True, check=True)
    daemon = subprocess.Popen(["cron", "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and not any(
            line["event"] == "finish" and line["trigger"] == "cron" and line["status"] == "success"
            for line in ledger(home, "userPendingRefresh")
        ):
            time.sleep(1)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=10)
    finishes = [
        line for line in ledger(home, "userPendingRefresh") if line["event"] == "finish" and line["trigger"] == "cron"
    ]
    assert finishes, (home / "log" / "test.log").read_text() if (home / "log" / "test.log").exists() else "no log"
    # On a minute that is also the block's own */5 slot, both lines start: one works, the other is
    # locked out or finds the slot done.
    assert "success" in {line["status"] for line in finishes}
    assert {line["status"] for line in finishes} <= {"success", "locked", "skipped"}
