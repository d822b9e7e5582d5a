"""dailySync: keep open, non-confidential cases current from eCourts, politely and safely.

Selection: OPEN or IN_PROGRESS cases that are not confidential and have a
CNR, least recently synced first, at most CASEJOBS_SYNC_MAX_CASES a run,
skipping those synced in the last CASEJOBS_SYNC_MIN_HOURS (unless --force).
Requests go out on a small thread pool behind lib/ecourts.py's pacing,
retries and breaker; each answer is written in one transaction of its own,
so a kill at any moment leaves every case fully updated or untouched.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from jobs import DAILY_SYNC as SPEC
from lib.cli import job_command, main
from lib.clock import format_utc
from lib.db import write_transaction
from lib.ecourts import CaseData, CaseError, ClientConfig, EcourtsClient, StopRun, normalise_cnr
from lib.errors import ConfigError, JobFailed
from lib.harness import RunContext
from lib.jobspec import Outcome
from lib.scrub import scrub
from lib.settings import Settings
from lib.stop import DaemonPool
from lib.vocabulary import PENDING_CASE, PENDING_REVIEW

CANDIDATES = f"""
SELECT id, case_number, cnr, lawyer_id, next_hearing_date, ecourts_status, ecourts_stage, court_no, judge
FROM cases
WHERE status IN {PENDING_CASE} AND is_confidential = 0 AND cnr IS NOT NULL AND trim(cnr) != ''
  AND (:force OR last_synced_at IS NULL OR last_synced_at < :fresh_before)
ORDER BY last_synced_at IS NOT NULL, last_synced_at, id
"""
CONFIDENTIAL = f"""
SELECT count(*) FROM cases
WHERE status IN {PENDING_CASE} AND is_confidential = 1 AND cnr IS NOT NULL AND trim(cnr) != ''
"""
HEARING_UPSERT = """
INSERT INTO hearings (case_id, hearing_date, purpose, judge, status, attendee_id, source)
VALUES (:case_id, :hearing_date, :purpose, :judge, :status, :attendee_id, 'ECOURTS')
ON CONFLICT (case_id, hearing_date) DO UPDATE SET
    purpose = CASE WHEN hearings.source = 'ECOURTS' THEN coalesce(excluded.purpose, hearings.purpose)
                   ELSE coalesce(hearings.purpose, excluded.purpose) END,
    judge = CASE WHEN hearings.source = 'ECOURTS' THEN coalesce(excluded.judge, hearings.judge)
                 ELSE coalesce(hearings.judge, excluded.judge) END
"""
ORDER_INSERT = f"""
INSERT INTO orders (case_id, order_date, order_no, kind, document_url, review_status, reviewer_id, source)
VALUES (:case_id, :order_date, :order_no, :kind, :document_url, '{PENDING_REVIEW}', :reviewer_id, 'ECOURTS')
ON CONFLICT (case_id, kind, order_no) DO UPDATE SET
    order_date = coalesce(excluded.order_date, orders.order_date),
    document_url = coalesce(excluded.document_url, orders.document_url)
"""


@dataclass
class Candidate:
    """A case chosen for this run, with the values a change is measured against."""

    case_id: int
    case_number: str
    cnr: str
    lawyer_id: int | None
    old: dict[str, Any]


@dataclass
class Selection:
    """What this run will fetch, and what it will not."""

    cases: list[Candidate] = field(default_factory=list)
    invalid: list[dict[str, Any]] = field(default_factory=list)
    skipped_confidential: int = 0


def select_cases(context: RunContext) -> Selection:
    """Return up to max_cases valid candidates, least recently synced first, and the invalid CNRs met."""
    limit = context.settings.get("sync.max_cases")
    fresh_before = format_utc(context.now - dt.timedelta(hours=context.settings.get("sync.min_hours")))
    connection = context.database.conn
    selection = Selection(skipped_confidential=connection.execute(CONFIDENTIAL).fetchone()[0])
    rows = connection.execute(CANDIDATES, {"force": int(context.force), "fresh_before": fresh_before})
    for case_id, case_number, raw_cnr, lawyer_id, *values in rows:
        if len(selection.cases) >= limit:
            break
        cnr, problem = normalise_cnr(raw_cnr, context.today)
        if cnr is None:
            selection.invalid.append({"case_id": case_id, "case_number": case_number, "reason": problem})
            continue
        old = dict(
            zip(("next_hearing_date", "ecourts_status", "ecourts_stage", "court_no", "judge"), values, strict=True)
        )
        selection.cases.append(Candidate(case_id, case_number, cnr, lawyer_id, old))
    rows.close()
    return selection


def describe_changes(candidate: Candidate, data: CaseData, new_orders: list[tuple[str, str]]) -> list[str]:
    """Return the changes a lawyer must see: new orders, a moved next hearing, a disposal."""
    changes = [f"new {kind.lower()} order {number}" for kind, number in new_orders]
    old_date, new_date = candidate.old["next_hearing_date"], data.next_hearing_date
    if new_date is not None and new_date.isoformat() != old_date:
        changes.append(
            f"next hearing {'moved from ' + old_date + ' to' if old_date else 'set for'} {new_date.isoformat()}"
        )
    if data.status == "DISPOSED" and candidate.old["ecourts_status"] != "DISPOSED":
        changes.append("the case was disposed")
    return changes


def store_case(context: RunContext, candidate: Candidate, data: CaseData) -> list[str]:
    """Write one fetched case in one transaction; return the changes a lawyer must see."""
    case_id, lawyer_id = candidate.case_id, candidate.lawyer_id
    now_text = format_utc(context.now)
    new = {
        "next_hearing_date": data.next_hearing_date.isoformat() if data.next_hearing_date else None,
        "ecourts_status": data.status,
        "ecourts_stage": data.stage,
        "court_no": data.court_no,
        "judge": data.judge,
    }
    connection = context.database.conn
    with write_transaction(context.database):
        connection.execute(
            "UPDATE cases SET next_hearing_date = :next_hearing_date, ecourts_status = :ecourts_status, "
            "ecourts_stage = :ecourts_stage, court_no = :court_no, judge = :judge, last_synced_at = :now, "
            "sync_error = NULL, updated_at = :now WHERE id = :id",
            {**new, "now": now_text, "id": case_id},
        )
        hearings = [(hearing.date, hearing.purpose, hearing.judge) for hearing in data.hearings]
        if data.next_hearing_date:
            hearings.append((data.next_hearing_date, data.stage, data.judge))
        for day, purpose, judge in hearings:
            status = "SCHEDULED" if day >= context.today else "HELD"
            connection.execute(
                HEARING_UPSERT,
                {
                    "case_id": case_id,
                    "hearing_date": day.isoformat(),
                    "purpose": purpose,
                    "judge": judge,
                    "status": status,
                    "attendee_id": lawyer_id,
                },
            )
        known = set(connection.execute("SELECT kind, order_no FROM orders WHERE case_id = ?", (case_id,)).fetchall())
        new_orders = []
        for order in data.orders:
            if (order.kind, order.number) not in known:
                new_orders.append((order.kind, order.number))
            connection.execute(
                ORDER_INSERT,
                {
                    "case_id": case_id,
                    "order_date": order.date.isoformat() if order.date else None,
                    "order_no": order.number,
                    "kind": order.kind,
                    "document_url": order.url,
                    "reviewer_id": lawyer_id,
                },
            )
        changes = describe_changes(candidate, data, new_orders)
        if changes:
            _record_changes(context, candidate, changes, new, now_text)
    return changes


def _record_changes(
    context: RunContext, candidate: Candidate, changes: list[str], new: dict[str, Any], now_text: str
) -> None:
    """One SYNC_CHANGE notification for the lawyer and a CASE_SYNCED audit row (inside the case's transaction)."""
    fingerprint = hashlib.sha256("\n".join(changes).encode()).hexdigest()[:16]
    connection = context.database.conn
    if candidate.lawyer_id is not None:
        connection.execute(
            "INSERT OR IGNORE INTO notifications (user_id, kind, title, body, entity_type, entity_id, dedupe_key, created_at) "
            "VALUES (?, 'SYNC_CHANGE', ?, ?, 'CASE', ?, ?, ?)",
            (
                candidate.lawyer_id,
                f"eCourts update for {candidate.case_number}",
                scrub("\n".join(f"- {change}" for change in changes) + "\n"),
                candidate.case_id,
                f"sync:{candidate.case_id}:{fingerprint}",
                now_text,
            ),
        )
    connection.execute(
        "INSERT INTO audit_logs (action, entity_type, entity_id, entity_name, severity, description, details, created_at) "
        "VALUES ('CASE_SYNCED', 'CASE', ?, ?, 'LOW', ?, ?, ?)",
        (
            candidate.case_id,
            candidate.case_number,
            scrub("; ".join(changes)),
            scrub(json.dumps({"old": candidate.old, "new": new, "changes": changes})),
            now_text,
        ),
    )


def record_failure(context: RunContext, candidate: Candidate, reason: str) -> None:
    """Keep why a case failed; last_synced_at stays, so the case comes first next run."""
    with write_transaction(context.database):
        context.database.conn.execute(
            "UPDATE cases SET sync_error = ? WHERE id = ?", (scrub(reason)[:500], candidate.case_id)
        )


def record_invalid(context: RunContext, invalid: list[dict[str, Any]]) -> None:
    """Say on each case with an invalid CNR why it is never sent."""
    with write_transaction(context.database):
        context.database.conn.executemany(
            "UPDATE cases SET sync_error = ? WHERE id = ?",
            [(f"invalid CNR: {case['reason']}", case["case_id"]) for case in invalid],
        )


def check_settings(settings: Settings) -> None:
    """Raise ConfigError unless the eCourts base URL and token are set."""
    if not settings.get("ecourts.base_url"):
        raise ConfigError("CASEJOBS_ECOURTS_BASE_URL is not set (sim:// uses the built-in simulator)")
    if not settings.secret("ecourts.token"):
        raise ConfigError("no eCourts token: set CASEJOBS_ECOURTS_TOKEN or CASEJOBS_ECOURTS_TOKEN_FILE")


def make_client(context: RunContext) -> EcourtsClient:
    """Return the eCourts client of the settings (sim:// is the simulator, in-process)."""
    config = ClientConfig.from_settings(context.settings)
    if config.base_url.startswith("sim:"):
        # In-process there is no upstream to be polite to: no pacing.
        from lib.ecourts_sim import Simulator, SimulatorTransport  # the demo's simulator: loaded only for sim://

        simulator = Simulator(token=config.token, today=context.today)
        unpaced = ClientConfig(**{**vars(config), "base_url": "http://simulator", "rate_per_minute": 60_000})
        return EcourtsClient(unpaced, SimulatorTransport(simulator), sleep=context.stop_flag.sleep)
    return EcourtsClient(config, sleep=context.stop_flag.sleep)


def dry_run_plan(selection: Selection) -> Iterator[str]:
    """Yield what a run would do: each case it would fetch, each it never sends and why."""
    for candidate in selection.cases:
        yield f"would fetch {candidate.case_number} ({candidate.cnr})"
    for case in selection.invalid:
        yield f"invalid CNR, never sent: {case['case_number']}: {case['reason']}"


def work(context: RunContext) -> Outcome:
    """The job's work: select, fetch (paced, on `concurrency` threads) and store each case.

    A case whose CNR is invalid, or whose answer cannot be stored, is a bad
    row: skipped, counted, named by id; every other case is still synced.
    """
    selection = select_cases(context)
    details = context.outcome.details
    details |= {
        "selected": len(selection.cases),
        "invalid_cnr": [case["case_id"] for case in selection.invalid],
        "skipped_confidential": selection.skipped_confidential,
    }
    if context.dry_run:
        context.outcome.plan = dry_run_plan(selection)
        return context.outcome
    if selection.invalid:
        record_invalid(context, selection.invalid)
        for case in selection.invalid:
            context.bad_row("cases", case["case_id"], "cnr is not a valid CNR: it is never sent")
    for figure in ("synced", "unchanged", "failed"):
        details[figure] = 0
    client = make_client(context)
    stopped = None
    with ExitStack() as stack:
        stack.callback(client.close)
        # Daemon workers: a stopped run never waits for a request in flight (it is abandoned).
        pool = DaemonPool(client.config.concurrency, "ecourts")
        stack.callback(pool.close)
        progress = stack.enter_context(context.progress("syncing", len(selection.cases)))
        futures = {pool.submit(client.fetch, candidate.cnr): candidate for candidate in selection.cases}
        for future in context.stop_flag.as_completed(futures):
            context.checkpoint()
            stopped = settle(context, futures[future], future, quiet=progress.shown)
            details |= client.counters.figures()
            progress.update(1)
            if stopped:
                break
    if stopped and not client.counters.breaker_tripped:
        raise JobFailed(stopped, context.outcome)
    if stopped:
        context.outcome.errors = max(context.outcome.errors, 1)
        details["stopped"] = stopped
    return context.outcome


def settle(context: RunContext, candidate: Candidate, future: concurrent.futures.Future, quiet: bool) -> str | None:
    """Store one finished fetch (or its failure) and count it in the run's figures.

    Return the reason when no further call can succeed (a refused token, the
    breaker), else None. quiet logs each case at debug level (a progress bar
    shows them).
    """
    outcome = context.outcome
    try:
        data = future.result()
    except StopRun as stop:
        context.log.error("sync stopped", reason=str(stop))
        return str(stop)
    except CaseError as error:
        outcome.add("failed")
        outcome.errors += 1
        record_failure(context, candidate, str(error))
        context.log.warning("case failed", case_number=candidate.case_number, reason=str(error))
        return None
    changes: list[str] = []
    with context.one_row("cases", candidate.case_id, "storing the answer") as row:
        changes = store_case(context, candidate, data)
    if row.skipped:
        return None
    outcome.add("synced" if changes else "unchanged")
    outcome.items += 1
    (context.log.debug if quiet else context.log.info)(
        "case synced",
        case_number=candidate.case_number,
        result="synced" if changes else "unchanged",  # as the ledger counts it
        **({"changes": changes} if changes else {}),
    )
    return None


command = job_command(SPEC)


def run() -> None:
    """The console script of this job (pyproject.toml): the same as bin/<script>."""
    main(command)


if __name__ == "__main__":
    run()
