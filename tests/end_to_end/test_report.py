"""The one-page HTML report, the weekly mail and the alerts, through the bin/ scripts.

The page is opened by a real browser (Debian's headless Chromium, driven by
chromedriver through selenium) with the network off; the mails reach a real
SMTP server on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import struct
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest
from cronsim import CronSim

from jobs import REGISTRY
from lib.clock import IST, format_utc
from tests.conftest import ECOURTS_TOKEN, ecourts_environment, run_script
from tests.helpers import last_finish, write_ledger
from tests.smtp_server import free_port, smtp_server

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)  # 17:30 IST
JOBS = [entry.job for entry in REGISTRY.entries()]
needs_chromium = pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("chromedriver")),
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
)
DETAILS = {
    "dailySync": {"selected": 100, "synced": 96, "unchanged": 3, "failed": 1},
    "slaCheck": {"notified_users": 20, "emails_sent": 19, "emails_failed": 1},
    "nightlyBackup": {
        "package": "casejobs-backup.zip",
        "size": 412_000_000,
        "sha256": "0" * 64,
        "compression_ratio": 5.2,
    },
    "userPendingRefresh": {
        "users": 1432,
        "workload_levels": {"LOW": 900, "MODERATE": 300, "HIGH": 200, "CRITICAL": 32},
    },
    "backupDrill": {"rows": 7_565_029, "restored": True},
    "weeklyReport": {"emails_sent": 2},
}


def history(home: Path, days: int, end: dt.datetime = NOW) -> int:
    """Write days of every job's runs before end: mostly successes, a partial every 50th run, a failure
    with its reason every 97th. Return how many runs were written."""
    total = 0
    for entry in REGISTRY.entries():
        lines: list[dict[str, Any]] = []
        for number, moment in enumerate(CronSim(entry.expression, (end - dt.timedelta(days=days)).astimezone(IST)), 1):
            if moment >= end:
                break
            status = "failed" if number % 97 == 0 else "partial" if number % 50 == 0 else "success"
            base = {"v": 1, "run_id": uuid.UUID(int=hash((entry.job, number)) & (2**128 - 1)).hex, "job": entry.job}
            base |= {"pid": 4242, "host": "firm-desktop", "trigger": "cron"}
            lines.append({**base, "event": "start", "ts": format_utc(moment)})
            finish = {**base, "event": "finish", "ts": format_utc(moment + dt.timedelta(seconds=2)), "status": status}
            finish |= {
                "exit_code": {"success": 0, "partial": 3, "failed": 1}[status],
                "duration_ms": 900 + number % 300,
            }
            finish |= {"items": 10, "errors": int(status != "success"), "details": DETAILS[entry.job]}
            if status == "failed":
                finish["error"] = "eCourts answered 503 five times in a row: the breaker stopped the run"
            lines.append(finish)
            total += 1
        write_ledger(home, entry.job, lines)
    (home / "installed-at").write_text(format_utc(end - dt.timedelta(days=days)) + "\n")
    return total


def make_page(home: Path, tmp_path: Path, *arguments: str) -> tuple[Path, str]:
    page = tmp_path / "report.html"
    result = run_script("jobstats", "--html", str(page), *arguments, home=home, CASEJOBS_NOW=format_utc(NOW))
    assert result.returncode == 0, result.stderr
    return page, page.read_text()


def tile_levels(text: str) -> dict[str, str]:
    return dict(
        re.findall(r'<section class="tile level-\w+" id="tile-(\w+)"[^>]*><h3>\w+ <span class=state>(\w+)</span>', text)
    )


def check_levels(home: Path) -> dict[str, str]:
    """Each job's level as `jobstats --check` says it (a line about no job in particular counts for all)."""
    result = run_script("jobstats", "--check", home=home, CASEJOBS_NOW=format_utc(NOW))
    levels = dict.fromkeys(JOBS, "OK")
    order = ["OK", "WARNING", "CRITICAL"]
    for line in result.stdout.splitlines():
        match = re.match(r"^(WARNING|CRITICAL) (\w+):", line)
        if match and match.group(2) in levels:
            levels[match.group(2)] = max(levels[match.group(2)], match.group(1), key=order.index)
        elif match or line.startswith("WARNING casejobs is not installed"):
            for job in levels:
                levels[job] = max(levels[job], line.split()[0], key=order.index)
    return levels


@pytest.mark.parametrize("days", [0, 1, 365], ids=["empty", "one-day", "a-year"])
def test_the_page_builds_for_any_ledger_and_its_tiles_say_what_check_says(
    home: Path, tmp_path: Path, days: int
) -> None:
    if days == 1:
        write_ledger(home, "nightlyBackup", [
            {"v": 1, "run_id": "r1", "job": "nightlyBackup", "pid": 1, "host": "h", "trigger": "cron", "event": "start", "ts": "2026-11-27T18:00:00.000Z"},
            {"v": 1, "run_id": "r1", "job": "nightlyBackup", "pid": 1, "host": "h", "trigger": "cron", "event": "finish", "ts": "2026-11-27T18:00:30.000Z", "status": "failed", "exit_code": 1, "error": "disk full"},
        ])  # fmt: skip
    elif days:
        history(home, days)

    _, text = make_page(home, tmp_path, "--since", f"{max(days, 1)}d")

    assert tile_levels(text) == check_levels(home)
    assert (
        text.startswith("<!DOCTYPE html>")
        and "<script src" not in text
        and "http://" not in text.replace("http://www.w3.org", "")
    )
    for job in JOBS:
        assert f'id="tile-{job}"' in text and f'aria-label="{job}: timeline"' in text
    if days == 1:
        assert "disk full" in text  # the failure, in the last failures table and in its mark


def test_a_damaged_ledger_gives_the_same_page_with_a_note(home: Path, tmp_path: Path) -> None:
    history(home, 3)
    _, clean = make_page(home, tmp_path)
    month = sorted((home / "ledger" / "dailySync").glob("*.jsonl"))[-1]
    month.write_text(month.read_text() + "{not json\n" + '{"v": 1, "event": "finish", "ts": "nonsense"}\n')

    _, damaged = make_page(home, tmp_path)

    assert "skipped 2 damaged ledger lines" in damaged
    assert tile_levels(damaged) == tile_levels(clean)


def test_nothing_confidential_or_secret_reaches_the_page(home: Path, tmp_path: Path) -> None:
    history(home, 2)
    result = run_script(
        "jobstats", "--html", str(tmp_path / "page.html"), home=home,
        CASEJOBS_NOW=format_utc(NOW), CASEJOBS_ECOURTS_TOKEN="tok-very-secret-99", CASEJOBS_SMTP_PASSWORD="pw-secret-77",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "page.html").read_text()
    assert "tok-very-secret-99" not in text and "pw-secret-77" not in text


def png_is_blank(path: Path) -> bool:
    """True if a PNG screenshot holds a single colour (decoded with zlib: no image library needed)."""
    data = path.read_bytes()
    position, compressed = 8, b""
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        if kind == b"IDAT":
            compressed += data[position + 8 : position + 8 + length]
        position += 12 + length
    pixels = zlib.decompress(compressed)
    return len(set(pixels[: 1 << 20])) <= 2  # the filter bytes and one colour


@needs_chromium
def test_a_real_browser_shows_every_tile_and_chart_offline_without_errors(home: Path, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    history(home, 30)
    page, _ = make_page(home, tmp_path)
    options = Options()
    options.binary_location = shutil.which("chromium")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1100,2400",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        driver.get(page.as_uri())
        tiles = [element.get_attribute("id") for element in driver.find_elements(By.CSS_SELECTOR, "section.tile")]
        charts = [
            element.get_attribute("aria-label") for element in driver.find_elements(By.CSS_SELECTOR, "figure.chart")
        ]
        drawn = len(driver.find_elements(By.CSS_SELECTOR, "figure.chart svg"))
        mark = driver.find_element(By.CSS_SELECTOR, "figure.chart g.dots")
        driver.execute_script("arguments[0].focus()", mark)
        focused = driver.find_element(By.ID, "focus-details").text
        console = driver.get_log("browser")
        requests = [
            json.loads(entry["message"])["message"]["params"]["request"]["url"]
            for entry in driver.get_log("performance")
            if json.loads(entry["message"])["message"]["method"] == "Network.requestWillBeSent"
        ]
        screenshot = tmp_path / "report.png"
        driver.save_screenshot(str(screenshot))
    finally:
        driver.quit()

    assert tiles == [f"tile-{job}" for job in JOBS]
    for job in JOBS:
        assert f"{job}: timeline" in charts and f"{job}: duration" in charts
    assert drawn == len(charts)
    assert "IST" in focused and ("success" in focused or "runs" in focused)  # a focused mark shows its run
    assert [entry for entry in console if entry["level"] == "SEVERE"] == []
    assert [url for url in requests if not url.startswith("file://")] == []
    assert screenshot.stat().st_size > 20_000 and not png_is_blank(screenshot)


def admins(database_path: Path) -> None:
    import sqlite3

    connection = sqlite3.connect(database_path)
    with connection:
        for name, address in (("Asha Admin", "asha@firm.example"), ("Ravi Admin", "ravi@firm.example")):
            connection.execute(
                "INSERT INTO users (name, email, role, is_active, created_at, updated_at) VALUES (?, ?, 'ADMIN', 1, ?, ?)",
                (name, address, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
            )
        connection.execute(
            "INSERT INTO users (name, email, role, is_active, created_at, updated_at) VALUES ('Old Admin', 'old@firm.example', 'ADMIN', 0, ?, ?)",
            ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
        )
    connection.close()


def smtp_settings(port: int) -> dict[str, str]:
    return {"CASEJOBS_SMTP_HOST": "127.0.0.1", "CASEJOBS_SMTP_PORT": str(port), "CASEJOBS_SMTP_SECURITY": "none"}


def test_the_weekly_report_reaches_every_admin_with_text_and_the_page(
    home: Path, database_path: Path, tmp_path: Path
) -> None:
    admins(database_path)
    history(home, 10)
    with smtp_server() as (server, received):
        result = run_script("weekly-report", home=home, CASEJOBS_NOW=format_utc(NOW), **smtp_settings(server.port))

    assert result.returncode == 0, result.stderr
    assert sorted(message["To"].addresses[0].addr_spec for message in received.messages) == [
        "asha@firm.example",
        "ravi@firm.example",
    ]
    message = received.messages[0]
    state = run_script("jobstats", "--check", home=home, CASEJOBS_NOW=format_utc(NOW)).stdout.split()[0]
    assert message["Subject"] == f"casejobs weekly report: {state} (week to 2026-11-28)"
    text = message.get_body(("plain",)).get_content()
    page = message.get_body(("html",)).get_content()
    assert f"casejobs on 2026-11-28 17:30 IST: {state}" in text
    assert page.startswith("<!DOCTYPE html>") and 'id="tile-dailySync"' in page
    assert last_finish(home, "weeklyReport")["details"]["emails_sent"] == 2


def test_alerts_mail_once_when_a_job_turns_critical_and_once_when_it_recovers(
    home: Path, database_path: Path, dataset: Any, ecourts: Any
) -> None:
    _, api = ecourts
    admins(database_path)
    dataset.case(lawyer_id=dataset.user(), cnr="MHAU010000012023")  # one case to sync: a refused token fails
    with smtp_server() as (server, received):
        mail = smtp_settings(server.port)
        wrong = {**ecourts_environment(api), "CASEJOBS_ECOURTS_TOKEN": "tok-wrong-0000", **mail}
        codes = [run_script("daily-sync", "--force", home=home, **wrong).returncode for _ in range(3)]
        after_failures = [message["Subject"] for message in received.messages]
        healed = run_script("daily-sync", "--force", home=home, **ecourts_environment(api), **mail)
        after_recovery = [message["Subject"] for message in received.messages]

    assert codes == [1, 1, 1] and healed.returncode in (0, 3)
    assert after_failures == ["casejobs CRITICAL: dailySync"] * 2  # one mail to each of the two ADMINs
    assert after_recovery == after_failures + ["casejobs recovered: dailySync"] * 2
    critical = next(message for message in received.messages if "CRITICAL" in message["Subject"])
    assert "dailySync: last run failed" in critical.get_body(("plain",)).get_content()
    assert ECOURTS_TOKEN not in "".join(message.as_string() for message in received.messages)
    assert json.loads((home / "alerts.json").read_text())["dailySync"]["level"] in ("OK", "WARNING")


def test_an_alert_the_server_refused_is_tried_again_and_never_changes_a_run(
    home: Path, database_path: Path, dataset: Any, ecourts: Any
) -> None:
    _, api = ecourts
    admins(database_path)
    dataset.case(lawyer_id=dataset.user(), cnr="MHAU010000012023")
    wrong = {**ecourts_environment(api), "CASEJOBS_ECOURTS_TOKEN": "tok-wrong-0000"}

    down = run_script("daily-sync", "--force", home=home, **wrong, **smtp_settings(free_port()))

    assert down.returncode == 1 and last_finish(home, "dailySync")["status"] == "failed"
    state = home / "alerts.json"
    assert not state.exists() or json.loads(state.read_text()).get("dailySync", {}).get("level") != "CRITICAL"
    with smtp_server() as (server, received):
        again = run_script("daily-sync", "--force", home=home, **wrong, **smtp_settings(server.port))

    assert again.returncode == 1
    assert [message["Subject"] for message in received.messages] == ["casejobs CRITICAL: dailySync"] * 2


def test_a_database_that_is_gone_is_still_alerted_to_the_admins_last_known(
    home: Path, database_path: Path, dataset: Any
) -> None:
    admins(database_path)
    with smtp_server() as (server, received):
        mail = smtp_settings(server.port)
        first = run_script("user-pending-refresh", home=home, **mail)  # a good run: the ADMINs are remembered
        database_path.rename(database_path.with_name("moved-away.db"))
        gone = run_script("user-pending-refresh", home=home, **mail)
        look = run_script("jobctl", "catch-up", home=home, **mail)
        subjects = [message["Subject"] for message in received.messages]

    assert first.returncode == 0 and gone.returncode == 78, gone.stderr
    assert subjects == ["casejobs CRITICAL: userPendingRefresh"] * 2, (subjects, look.stdout, look.stderr)
    assert "alert mailed: userPendingRefresh CRITICAL" in look.stdout
    assert oct((home / "alert-recipients.json").stat().st_mode & 0o777) == "0o600"


def test_a_refused_smtp_login_is_not_tried_again_at_every_look(
    home: Path, database_path: Path, dataset: Any, ecourts: Any
) -> None:
    _, api = ecourts
    admins(database_path)
    dataset.case(lawyer_id=dataset.user(), cnr="MHAU010000012023")
    wrong_token = {**ecourts_environment(api), "CASEJOBS_ECOURTS_TOKEN": "tok-wrong-0000"}
    with smtp_server(refuse_logins=True) as (server, received):
        login = {**smtp_settings(server.port), "CASEJOBS_SMTP_USER": "casejobs"}
        wrong_password = {**login, "CASEJOBS_SMTP_PASSWORD": "wrong-pass"}
        runs = [run_script("daily-sync", "--force", home=home, **wrong_token, **wrong_password) for _ in range(2)]
        looks = [run_script("jobctl", "catch-up", home=home, **wrong_password) for _ in range(2)]
        attempts_with_the_wrong_password = received.login_attempts
        changed = run_script("jobctl", "catch-up", home=home, **login, CASEJOBS_SMTP_PASSWORD="another-pass")

    assert [run.returncode for run in runs] == [1, 1]
    assert not any("alert mailed" in look.stdout for look in looks)
    assert attempts_with_the_wrong_password == 1  # one refusal, then no try for hours: never a locked account
    assert "alerts not mailed: the SMTP login was refused" in runs[1].stderr
    assert received.login_attempts == 2, changed.stderr  # a changed password is tried at once
    assert "wrong-pass" not in (home / "alerts.json").read_text()


def test_a_hostile_ledger_is_shown_escaped_and_cut_and_never_breaks_the_page(home: Path, tmp_path: Path) -> None:
    base = {"v": 1, "job": "dailySync", "pid": 1, "host": "h", "trigger": "cron"}
    hostile_id = 'x"><svg onload=alert(1)><!--'
    write_ledger(home, "dailySync", [
        {**base, "run_id": hostile_id, "event": "start", "ts": "2026-11-28T01:00:00.000Z"},
        {**base, "run_id": hostile_id, "event": "finish", "ts": "2026-11-28T01:00:05.000Z", "status": "failed",
         "exit_code": 1, "duration_ms": 5000, "error": "<script>alert('x')</script>\x00\x01" + "long " * 500,
         "details": {"synced": 1e308, "failed": -1e308, "unchanged": "many"}},
        {**base, "run_id": "r2", "event": "start", "ts": "2026-11-28T02:00:00.000Z"},
        {**base, "run_id": "r2", "event": "finish", "ts": "2026-11-28T02:00:05.000Z", "status": "success",
         "exit_code": 0, "duration_ms": 4000, "details": {"synced": [1, 2], "failed": {"a": 1}, "unchanged": 3}},
    ])  # fmt: skip

    _, text = make_page(home, tmp_path)

    assert "<script>alert" not in text and "onload=alert(1)><" not in text
    assert "&lt;script&gt;alert" in text  # shown, as text
    assert "\x00" not in text and "\x01" not in text and "long " * 100 not in text  # cut
    assert 'id="tile-dailySync"' in text


def test_the_page_s_p50_and_p95_are_jobstats_own(home: Path, tmp_path: Path) -> None:
    history(home, 20)

    _, text = make_page(home, tmp_path, "--since", "20d")
    report = json.loads(
        run_script("jobstats", "--json", "--since", "20d", home=home, CASEJOBS_NOW=format_utc(NOW)).stdout
    )

    section = text[text.index('aria-label="nightlyBackup: duration"') :]
    for label in ("p50", "p95"):
        shown = float(re.search(rf"<td>{label}</td><td>([\d.]+)</td>", section).group(1))
        assert shown == report["jobs"]["nightlyBackup"]["duration_ms"][label] / 1000


def test_the_weekly_report_without_admins_says_so_and_a_refusing_server_fails_it(
    home: Path, database_path: Path
) -> None:
    with smtp_server() as (server, received):
        nobody = run_script("weekly-report", home=home, CASEJOBS_NOW=format_utc(NOW), **smtp_settings(server.port))
        assert nobody.returncode == 0 and received.messages == []
        assert "no active ADMIN user" in last_finish(home, "weeklyReport")["details"]["reason"]
        admins(database_path)
        received.refused |= {"asha@firm.example", "ravi@firm.example"}
        refused = run_script("weekly-report", home=home, CASEJOBS_NOW=format_utc(NOW), **smtp_settings(server.port))

    finish = last_finish(home, "weeklyReport")
    assert refused.returncode == 1 and finish["status"] == "failed"
    assert finish["error"].startswith("the report reached nobody: recipient refused: 550")
    assert "asha@firm.example" not in json.dumps(finish)  # users by id, never by address
