"""dailySync through bin/daily-sync against the simulator served on 127.0.0.1."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from tests.builders import Dataset
from tests.conftest import ECOURTS_TOKEN, ecourts_environment, run_script, start_script
from tests.helpers import last_finish, ledger_lines, wait_for_log_event

NOW = "2026-11-25T06:30:00+05:30"


def cnr(number: int) -> str:
    return f"MHAU01{number:06d}2023"


def sync(home: Path, server, *arguments: str, **environment: str):
    return run_script(
        "daily-sync", *arguments, home=home, **ecourts_environment(server, CASEJOBS_NOW=NOW, **environment)
    )


def finish(home: Path) -> dict:
    return last_finish(home, "dailySync")


def query(database_path: Path, sql: str, *parameters: object) -> list[tuple]:
    connection = sqlite3.connect(database_path)
    rows = connection.execute(sql, parameters).fetchall()
    connection.close()
    return rows


@pytest.fixture
def cases(dataset: Dataset) -> dict[str, int]:
    lawyer = dataset.user(name="Lawyer", email="lawyer@firm.example")
    return {
        "lawyer": lawyer,
        "open": dataset.case(lawyer_id=lawyer, status="OPEN", cnr=cnr(1)),
        "in_progress": dataset.case(lawyer_id=lawyer, status="IN_PROGRESS", cnr="mhau01-000002-2023"),
        "closed": dataset.case(lawyer_id=lawyer, status="CLOSED", cnr=cnr(3)),
        "on_hold": dataset.case(lawyer_id=lawyer, status="ON_HOLD", cnr=cnr(4)),
        "confidential": dataset.case(lawyer_id=lawyer, is_confidential=1, cnr=cnr(5)),
        "no_cnr": dataset.case(lawyer_id=lawyer),
    }


def test_only_open_non_confidential_cases_with_a_valid_cnr_are_sent(home, cases, ecourts, database_path) -> None:
    simulator, server = ecourts

    result = sync(home, server)

    assert result.returncode == 0, result.stderr
    assert sorted(request.cnr for request in simulator.log) == [cnr(1), cnr(2)]
    details = finish(home)["details"]
    assert (details["selected"], details["synced"], details["failed"], details["skipped_confidential"]) == (2, 2, 0, 1)
    assert details["requests"] == 2 and details["breaker_tripped"] is False


def test_an_invalid_cnr_is_a_bad_row_and_every_other_case_is_synced(
    home, cases, dataset, ecourts, database_path
) -> None:
    simulator, server = ecourts
    invalid = dataset.case(lawyer_id=cases["lawyer"], cnr="MH12-00-2023")

    result = sync(home, server)

    assert result.returncode == 3, result.stderr  # partial: one bad row, the others served
    assert sorted(request.cnr for request in simulator.log) == [cnr(1), cnr(2)]
    details = finish(home)["details"]
    assert details["synced"] == 2 and details["invalid_cnr"] == [invalid]
    assert details["bad_rows"] == [
        {"table": "cases", "id": invalid, "reason": "cnr is not a valid CNR: it is never sent"}
    ]
    (error,) = query(database_path, "SELECT sync_error FROM cases WHERE id = ?", invalid)[0]
    assert error.startswith("invalid CNR")


def test_a_case_is_stored_in_full(home, cases, ecourts, database_path) -> None:
    simulator, server = ecourts
    upstream = simulator.case_for(cnr(1))["data"]["courtCaseData"]

    assert sync(home, server).returncode == 0

    row = query(
        database_path,
        "SELECT ecourts_status, next_hearing_date, last_synced_at, sync_error FROM cases WHERE id = ?",
        cases["open"],
    )[0]
    assert row[0] in ("PENDING", "DISPOSED", "TRANSFERRED", "UNKNOWN")
    assert row[2] == "2026-11-25T01:00:00.000Z" and row[3] is None
    orders = query(
        database_path,
        "SELECT kind, order_no, review_status, reviewer_id, source FROM orders WHERE case_id = ?",
        cases["open"],
    )
    assert len(orders) == len(upstream["interimOrders"]) + len(upstream.get("judgmentOrders") or [])
    assert all(order[2:] == ("PENDING_REVIEW", cases["lawyer"], "ECOURTS") for order in orders)
    hearings = query(database_path, "SELECT hearing_date, source FROM hearings WHERE case_id = ?", cases["open"])
    assert len(hearings) == len({h for h, _ in hearings})  # one row per date, whatever the duplicates upstream
    (notification,) = query(
        database_path, "SELECT kind, user_id, title FROM notifications WHERE entity_id = ?", cases["open"]
    )
    assert notification[:2] == ("SYNC_CHANGE", cases["lawyer"])
    audit = query(
        database_path, "SELECT details FROM audit_logs WHERE action = 'CASE_SYNCED' AND entity_id = ?", cases["open"]
    )
    assert json.loads(audit[0][0])["old"]["next_hearing_date"] is None


def test_a_manual_hearing_on_the_same_date_is_enriched_not_duplicated(home, dataset, ecourts, database_path) -> None:
    simulator, server = ecourts
    lawyer, attendee = dataset.user(), dataset.user(role="PARALEGAL")
    case_id = dataset.case(lawyer_id=lawyer, cnr=cnr(7))
    upstream_next = simulator.case_for(cnr(7))["data"]["courtCaseData"]["nextHearingDate"]
    from lib.ecourts import parse_messy_date

    day = parse_messy_date(upstream_next).isoformat()
    dataset.connection.execute(
        "INSERT INTO hearings (case_id, hearing_date, status, attendee_id, outcome, source) VALUES (?, ?, 'SCHEDULED', ?, 'Brief ready', 'MANUAL')",
        (case_id, day, attendee),
    )
    dataset.connection.commit()

    assert sync(home, server).returncode == 0

    rows = query(
        database_path,
        "SELECT attendee_id, outcome, source, purpose FROM hearings WHERE case_id = ? AND hearing_date = ?",
        case_id,
        day,
    )
    assert len(rows) == 1
    attendee_id, outcome, source, purpose = rows[0]
    assert (attendee_id, outcome, source) == (attendee, "Brief ready", "MANUAL")
    assert purpose is not None  # enriched from eCourts


def test_running_again_changes_nothing_and_a_real_change_notifies_once(home, cases, ecourts, database_path) -> None:
    simulator, server = ecourts
    assert sync(home, server).returncode == 0

    def counts() -> tuple:
        return query(
            database_path,
            "SELECT (SELECT count(*) FROM hearings), (SELECT count(*) FROM orders), (SELECT count(*) FROM notifications)",
        )[0]

    first = counts()
    skipped = sync(home, server)  # synced within 20 hours: nothing is fetched
    assert skipped.returncode == 0 and finish(home)["details"]["selected"] == 0
    forced = sync(home, server, "--force")
    assert forced.returncode == 0 and finish(home)["details"]["unchanged"] == 2
    assert counts() == first

    simulator.generation += 1  # upstream: the next hearing moves a week, one more order
    assert sync(home, server, "--force").returncode == 0
    _, orders, notifications = counts()
    assert (orders, notifications) == (first[1] + 2, first[2] + 2)
    from lib.ecourts import parse_messy_date

    for key, number in (("open", 1), ("in_progress", 2)):
        body = query(database_path, "SELECT body FROM notifications WHERE entity_id = ? ORDER BY id DESC", cases[key])[
            0
        ][0]
        assert "new interim order" in body
        has_next_hearing = parse_messy_date(simulator.case_for(cnr(number))["data"]["courtCaseData"]["nextHearingDate"])
        assert ("next hearing moved from" in body) == (has_next_hearing is not None)


def test_at_most_max_cases_least_recently_synced_first(home, dataset, ecourts, database_path) -> None:
    simulator, server = ecourts
    lawyer = dataset.user()
    older = dataset.case(lawyer_id=lawyer, cnr=cnr(11), last_synced_at="2026-11-20T00:00:00.000Z")
    never = dataset.case(lawyer_id=lawyer, cnr=cnr(12))
    dataset.case(lawyer_id=lawyer, cnr=cnr(13), last_synced_at="2026-11-23T00:00:00.000Z")

    assert sync(home, server, CASEJOBS_SYNC_MAX_CASES="2").returncode == 0

    assert [request.cnr for request in simulator.log] == [cnr(12), cnr(11)]
    assert {older, never} == {
        row[0] for row in query(database_path, "SELECT id FROM cases WHERE last_synced_at LIKE '2026-11-25%'")
    }


def test_a_failed_case_keeps_its_reason_and_is_retried_next_run(home, cases, ecourts, database_path) -> None:
    simulator, server = ecourts
    simulator.add_fault(cnr(1), "404")

    result = sync(home, server)

    assert result.returncode == 3  # partial
    row = query(database_path, "SELECT last_synced_at, sync_error FROM cases WHERE id = ?", cases["open"])[0]
    assert row[0] is None and "404 CASE_NOT_FOUND" in row[1]
    assert finish(home)["details"]["failed"] == 1
    simulator.faults.clear()
    assert sync(home, server).returncode == 0
    assert [request.cnr for request in simulator.log][-1:] == [cnr(1)]


def test_a_refused_token_stops_the_run_plainly(home, cases, ecourts, database_path) -> None:
    simulator, server = ecourts
    simulator.add_fault(cnr(1), "402")
    simulator.add_fault(cnr(2), "402")

    result = sync(home, server, CASEJOBS_ECOURTS_CONCURRENCY="1")

    assert result.returncode == 1
    line = finish(home)
    assert line["status"] == "failed" and "no credits or subscription" in line["error"]
    assert len(simulator.log) == 1
    severity = query(database_path, "SELECT severity FROM audit_logs WHERE action = 'JOB_ERROR'")
    assert severity == [("CRITICAL",)]


def test_the_breaker_leaves_the_rest_for_the_next_run(home, dataset, ecourts, database_path) -> None:
    simulator, server = ecourts
    lawyer = dataset.user()
    for number in range(20, 30):
        dataset.case(lawyer_id=lawyer, cnr=cnr(number))
        simulator.add_fault(cnr(number), "503")

    result = sync(home, server, CASEJOBS_ECOURTS_RETRIES="1", CASEJOBS_ECOURTS_BREAKER_THRESHOLD="3")

    assert result.returncode == 3
    details = finish(home)["details"]
    assert details["breaker_tripped"] is True and details["failed"] == 3
    assert len({request.cnr for request in simulator.log}) == 3
    assert "circuit breaker" in details["stopped"]


def test_the_token_never_leaves(home, cases, ecourts, database_path, tmp_path) -> None:
    simulator, server = ecourts
    token_file = tmp_path / "token"
    token_file.write_text(ECOURTS_TOKEN + "\n")
    token_file.chmod(0o600)
    simulator.add_fault(cnr(2), "500")
    environment = {"CASEJOBS_ECOURTS_TOKEN": "", "CASEJOBS_ECOURTS_TOKEN_FILE": str(token_file)}

    outputs = [sync(home, server, "-v", **environment), sync(home, server, "--dry-run", "-v", **environment)]

    assert outputs[0].returncode == 3  # one case failed: the token file was used
    everything = "".join(result.stdout + result.stderr for result in outputs)
    everything += json.dumps(ledger_lines(home, "dailySync"))
    everything += json.dumps(query(database_path, "SELECT * FROM audit_logs")) + json.dumps(
        query(database_path, "SELECT * FROM cases")
    )
    assert ECOURTS_TOKEN not in everything


def test_dry_run_lists_what_would_be_fetched_and_sends_nothing(home, cases, dataset, ecourts, database_path) -> None:
    simulator, server = ecourts
    dataset.case(lawyer_id=cases["lawyer"], cnr="MH12-00-2023")
    result = sync(home, server, "--dry-run")
    assert result.returncode == 0
    assert f"({cnr(1)})" in result.stdout and "invalid CNR, never sent" in result.stdout
    assert simulator.log == []
    assert query(database_path, "SELECT count(*) FROM cases WHERE sync_error IS NOT NULL") == [(0,)]


def test_a_cron_run_logs_one_line_per_case(home, cases, ecourts) -> None:
    _, server = ecourts
    result = sync(home, server, "--trigger", "cron")
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert sum(line["event"] == "case synced" for line in lines) == 2


def test_no_base_url_is_a_configuration_error(home, cases) -> None:
    result = run_script("daily-sync", home=home)
    assert result.returncode == 78 and "CASEJOBS_ECOURTS_BASE_URL" in result.stderr


@pytest.mark.slow
def test_sigkill_mid_run_leaves_every_case_whole_or_untouched(home, dataset, ecourts, database_path) -> None:
    simulator, server = ecourts
    simulator.latency = 0.2  # 60 cases, 4 at a time: about 3 s of work, killed half-way
    lawyer = dataset.user()
    ids = [dataset.case(lawyer_id=lawyer, cnr=cnr(number)) for number in range(100, 160)]
    process = start_script(
        "daily-sync", home=home, **ecourts_environment(server, CASEJOBS_NOW=NOW, CASEJOBS_ECOURTS_CONCURRENCY="4")
    )
    for _ in range(20):  # a third of the cases are stored: kill it half-way through its work
        wait_for_log_event(process, "case synced")
    process.kill()
    process.communicate()

    assert query(database_path, "PRAGMA integrity_check") == [("ok",)]
    done = 0
    for case_id in ids:
        (synced_at,) = query(database_path, "SELECT last_synced_at FROM cases WHERE id = ?", case_id)[0]
        ecourts_rows = query(
            database_path,
            "SELECT (SELECT count(*) FROM hearings WHERE case_id = ?1 AND source = 'ECOURTS') + "
            "(SELECT count(*) FROM orders WHERE case_id = ?1) + "
            "(SELECT count(*) FROM audit_logs WHERE entity_id = ?1 AND action = 'CASE_SYNCED')",
            case_id,
        )[0][0]
        if synced_at is None:
            assert ecourts_rows == 0, case_id
        else:
            done += 1
            assert ecourts_rows > 0, case_id  # every case gains at least its next hearing and its audit row
    assert 0 < done < len(ids)


def test_the_simulator_command_serves_on_loopback(home, tmp_path) -> None:
    import httpx

    from tests.smtp_server import free_port

    port = free_port()
    server = start_script("ecourts-sim", "--port", str(port), "--fault", f"{cnr(9)}=404", home=home)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{port}/api/partner/case/{cnr(8)}", headers={"Authorization": "Bearer demo-token"}
                )
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the simulator did not start"
                time.sleep(0.1)
        missing = httpx.get(
            f"http://127.0.0.1:{port}/api/partner/case/{cnr(9)}", headers={"Authorization": "Bearer demo-token"}
        )
        refused = httpx.get(f"http://127.0.0.1:{port}/api/partner/case/{cnr(8)}")
    finally:
        server.terminate()
        server.communicate(timeout=10)
    assert answer.status_code == 200 and answer.json()["data"]["courtCaseData"]["cnr"] == cnr(8)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "CASE_NOT_FOUND")
    assert refused.status_code == 401


def test_a_bad_fault_is_a_usage_error(home) -> None:
    result = run_script("ecourts-sim", "--fault", "MHAU010012342023=explode", home=home)
    assert result.returncode == 2 and "bad fault" in result.stderr
