"""The eCourts aggregator client: CNRs, tolerant parsing, pacing, retries and a circuit breaker.

The provider's field names are mapped to ours in one place (parse_case), so
that another aggregator is a small change. Errors come in three kinds:
CaseError (this case failed; the run goes on), StopRun (every further call
would fail: 401, 402, 403, or the breaker tripped) and nothing else.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from dateutil import parser as date_parser

from lib.scrub import remember as remember_secrets
from lib.scrub import scrub
from lib.settings import Settings

CNR_SHAPE = re.compile(r"^[A-Z]{4}[0-9]{12}$")
KNOWN_STATUSES = ("PENDING", "DISPOSED", "TRANSFERRED", "WITHDRAWN", "UNKNOWN")
PLACEHOLDERS = {
    "",
    "-",
    "--",
    "---",
    "0",
    "na",
    "n/a",
    "nil",
    "null",
    "none",
    "not available",
    "next date is not given",
}
ORDINAL_SUFFIX = re.compile(r"(?<=\d)(st|nd|rd|th)\b", re.IGNORECASE)
RETRY_AFTER_LIMIT = 120.0  # a longer wait is not worth holding a nightly run for: the case fails instead
STOP_CODES = {
    401: "the API token was refused",
    402: "the account has no credits or subscription left",
    403: "the account is inactive",
}


def normalise_cnr(raw: str | None, today: dt.date) -> tuple[str | None, str | None]:
    """Given a CNR as people write it, return (the CNR, None) or (None, why it is not valid).

    Hyphens and spaces are dropped and letters upper-cased; the year must lie
    between 1950 and next year, and the serial is never all zeros.
    """
    if raw is None or not raw.strip():
        return None, "no CNR"
    cnr = re.sub(r"[\s-]", "", raw).upper()
    if not CNR_SHAPE.match(cnr):
        return None, f"{raw!r} is not 4 letters and 12 digits"
    serial, year = cnr[6:12], int(cnr[12:])
    if serial == "000000":
        return None, f"{raw!r} has an all-zero serial"
    if not 1950 <= year <= today.year + 1:
        return None, f"{raw!r} has the year {year}"
    return cnr, None


def parse_messy_date(value: Any) -> dt.date | None:
    """Given a date as the courts write it (ISO, day first, words, a timestamp, or a
    placeholder such as "--" or "Next Date is not given"), return the date or None.
    """
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    if text.lower() in PLACEHOLDERS:
        return None
    try:
        return dt.date.fromisoformat(text[:10]) if re.match(r"^\d{4}-\d{2}-\d{2}", text) else _day_first(text)
    except (ValueError, OverflowError):
        return None


def _day_first(text: str) -> dt.date | None:
    parsed = date_parser.parse(ORDINAL_SUFFIX.sub("", text), dayfirst=True)
    return parsed.date() if 1900 <= parsed.year <= 2200 else None


@dataclass(frozen=True)
class Hearing:
    """One hearing the court lists for a case."""

    date: dt.date
    purpose: str | None
    judge: str | None


@dataclass(frozen=True)
class Order:
    """One order of a case: INTERIM or FINAL, numbered per kind."""

    kind: str
    number: str
    date: dt.date | None
    url: str | None


@dataclass(frozen=True)
class CaseData:
    """What the upstream says of one case, in our terms."""

    cnr: str
    status: str
    next_hearing_date: dt.date | None
    stage: str | None
    court_name: str | None
    court_no: str | None
    judge: str | None
    hearings: tuple[Hearing, ...]
    orders: tuple[Order, ...]
    modified: str | None


class CaseError(Exception):
    """This case could not be fetched or read; the run goes on. The text is safe to store."""

    def __init__(self, reason: str, upstream_fault: bool = False) -> None:
        super().__init__(reason)
        self.upstream_fault = upstream_fault  # counts towards the circuit breaker


class StopRun(Exception):
    """No further call can succeed (refused token, no credits, inactive account, breaker)."""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text if text and text.lower() not in PLACEHOLDERS else None


def parse_case(body: Any, asked_cnr: str) -> CaseData:
    """Given the JSON body of a 200 answer, return the CaseData; raise CaseError if it is not a case
    or is the case of another CNR. This is the one place that knows the provider's field names.
    """
    try:
        data = body["data"]["courtCaseData"]
    except (KeyError, TypeError):
        raise CaseError("upstream answer has no courtCaseData", upstream_fault=True) from None
    if not isinstance(data, dict):
        raise CaseError("upstream answer has no courtCaseData", upstream_fault=True)
    answered = re.sub(r"[\s-]", "", str(data.get("cnr") or "")).upper()
    if answered != asked_cnr:
        raise CaseError(f"upstream answered for another CNR ({answered or 'none'})")
    status = str(data.get("caseStatus") or "").strip().upper()
    hearings = {}
    for row in data.get("historyOfCaseHearings") or []:
        if not isinstance(row, dict):
            continue
        day = parse_messy_date(row.get("hearingDate") or row.get("businessOnDate"))
        if day is not None:  # duplicates collapse onto one date; rows without a date are dropped
            hearings[day] = Hearing(day, _text(row.get("purpose")), _text(row.get("judge")))
    orders = {}
    for kind, key in (("INTERIM", "interimOrders"), ("FINAL", "judgmentOrders")):
        for row in data.get(key) or []:
            if not isinstance(row, dict):
                continue
            day = parse_messy_date(row.get("orderDate"))
            number = _text(row.get("orderNumber")) or (day.isoformat() if day else None)
            if number:
                orders[(kind, number)] = Order(kind, number, day, _text(row.get("orderUrl")))
    judges = [str(judge).strip() for judge in data.get("judges") or [] if _text(judge)]
    entity = body["data"].get("entityInfo") if isinstance(body["data"].get("entityInfo"), dict) else {}
    return CaseData(
        cnr=asked_cnr,
        status=status if status in KNOWN_STATUSES else "UNKNOWN",
        next_hearing_date=parse_messy_date(data.get("nextHearingDate")),
        stage=_text(data.get("purpose")),
        court_name=_text(data.get("courtName")),
        court_no=_text(data.get("courtNo")),
        judge=", ".join(judges) or None,
        hearings=tuple(sorted(hearings.values(), key=lambda hearing: hearing.date)),
        orders=tuple(sorted(orders.values(), key=lambda order: (order.kind, order.number))),
        modified=_text(entity.get("dateModified")),
    )


@dataclass(frozen=True)
class ClientConfig:
    """How to reach the upstream and how politely."""

    base_url: str
    token: str
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    rate_per_minute: float = 60.0
    concurrency: int = 1
    retries: int = 3
    backoff_seconds: float = 1.0
    breaker_threshold: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientConfig:
        return cls(
            base_url=settings.get("ecourts.base_url").rstrip("/"),
            token=settings.secret("ecourts.token") or "",
            connect_timeout=settings.get("ecourts.connect_timeout"),
            read_timeout=settings.get("ecourts.read_timeout"),
            rate_per_minute=settings.get("ecourts.rate_per_minute"),
            concurrency=settings.get("ecourts.concurrency"),
            retries=settings.get("ecourts.retries"),
            backoff_seconds=settings.get("ecourts.backoff_ms") / 1000,
            breaker_threshold=settings.get("ecourts.breaker_threshold"),
        )


class Pacer:
    """Spaces request starts at least 60/rate seconds apart, across every thread."""

    def __init__(self, rate_per_minute: float, sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 60.0 / rate_per_minute
        self._next = 0.0
        self._lock = threading.Lock()
        self._sleep = sleep

    def wait_turn(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)


@dataclass
class Counters:
    """What the client did, for the ledger."""

    requests: int = 0
    retries: int = 0
    breaker_tripped: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, requests: int = 0, retries: int = 0) -> None:
        with self._lock:
            self.requests += requests
            self.retries += retries

    def figures(self) -> dict[str, int | bool]:
        """The client's figures for the run's details."""
        return {"requests": self.requests, "retries": self.retries, "breaker_tripped": self.breaker_tripped}


class EcourtsClient:
    """Fetches cases from the aggregator: paced, retried with backoff and jitter, behind a breaker."""

    def __init__(
        self,
        config: ClientConfig,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        remember_secrets([config.token])
        self.counters = Counters()
        self._sleep = sleep  # the run's stop-aware sleep: a stop ends any wait for pacing or a backoff
        self._pacer = Pacer(config.rate_per_minute, sleep)
        self._consecutive_failures = 0
        self._stopped: str | None = None
        self._lock = threading.Lock()
        self._http = httpx.Client(
            base_url=config.base_url,
            transport=transport,
            timeout=httpx.Timeout(config.read_timeout, connect=config.connect_timeout),
            headers={"Authorization": f"Bearer {config.token}", "Accept": "application/json"},
            limits=httpx.Limits(max_connections=max(1, config.concurrency)),
        )

    def close(self) -> None:
        self._http.close()

    def fetch(self, cnr: str) -> CaseData:
        """Return the case of a valid CNR; raise CaseError for this case, StopRun for the whole run."""
        with self._lock:
            if self._stopped:
                raise StopRun(self._stopped)
        try:
            case = self._fetch_with_retries(cnr)
        except CaseError as error:
            if error.upstream_fault:
                self._count_upstream_failure()
            raise
        with self._lock:
            self._consecutive_failures = 0
        return case

    def _count_upstream_failure(self) -> None:
        with self._lock:
            self._consecutive_failures += 1
            if self._consecutive_failures >= self.config.breaker_threshold and not self._stopped:
                self.counters.breaker_tripped = True
                self._stopped = (
                    f"circuit breaker: {self._consecutive_failures} cases in a row failed upstream; "
                    "the rest is left for the next run"
                )

    def _stop(self, reason: str) -> StopRun:
        with self._lock:
            self._stopped = reason
        return StopRun(reason)

    def _fetch_with_retries(self, cnr: str) -> CaseData:
        attempt = 0
        while True:
            wait = self._attempt(cnr)
            if isinstance(wait, CaseData):
                return wait
            retry_after, reason = wait
            if attempt >= self.config.retries:
                raise CaseError(f"{reason} (gave up after {attempt + 1} attempts)", upstream_fault=True)
            attempt += 1
            self.counters.add(retries=1)
            delay = retry_after if retry_after is not None else self.config.backoff_seconds * 2 ** (attempt - 1)
            delay += random.uniform(0, 0.1 * delay) if retry_after is None else 0  # jitter spreads retries apart
            self._sleep(delay)

    def _attempt(self, cnr: str) -> CaseData | tuple[float | None, str]:
        """One request: the CaseData, or (seconds to wait or None, reason) when worth retrying."""
        with self._lock:
            if self._stopped:
                raise StopRun(self._stopped)
        self._pacer.wait_turn()
        self.counters.add(requests=1)
        try:
            response = self._http.get(f"/api/partner/case/{cnr}")
        except httpx.TimeoutException:
            return None, "upstream timed out"
        except httpx.TransportError as error:
            return None, f"upstream unreachable: {type(error).__name__}"
        status = response.status_code
        if status == 200:
            try:
                body = response.json()
            except ValueError:
                raise CaseError("upstream answered 200 with a body that is not JSON", upstream_fault=True) from None
            return parse_case(body, cnr)
        code, message = _error_of(response)
        if status in STOP_CODES:
            raise self._stop(
                f"eCourts refused the run: {STOP_CODES[status]} ({status} {code}); no further case is sent"
            )
        if status == 429:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            if retry_after is not None and retry_after > RETRY_AFTER_LIMIT:
                raise CaseError(f"rate limited for {retry_after:.0f} s", upstream_fault=True)
            return retry_after, "rate limited (429)"
        if status >= 500:
            return None, f"upstream error {status} {code}"
        raise CaseError(f"{status} {code}: {message}" if message else f"{status} {code}")


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        error = response.json().get("error") or {}
        # The provider may quote our Authorization header back: never keep the token.
        return scrub(str(error.get("code") or "ERROR"))[:50], scrub(str(error.get("message") or ""))[:200]
    except (ValueError, AttributeError):
        return "ERROR", ""


def _retry_after(value: str | None) -> float | None:
    """Given a Retry-After header (seconds or an HTTP date), return the seconds to wait, or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - dt.datetime.now(dt.UTC)).total_seconds())
