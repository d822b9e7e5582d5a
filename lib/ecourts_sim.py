"""A simulator of the eCourts aggregator API (ecourts.md), for the demo and the tests.

Cases are derived deterministically from the CNR (and the simulator's day and
generation, so that a test can make a hearing move or an order appear), with
the messy values real data has. Any fault of the error table can be injected
per CNR (optionally for the first N requests only) or at a rate. It serves
HTTP on 127.0.0.1 (bin/ecourts-sim) or works in-process as an httpx
transport (base URL sim://), so that `make demo` syncs with no server.
Every request is logged with its time, so tests can check what was asked and when.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import click
import httpx

from lib.cli import main
from lib.clock import IST

FAULT_KINDS = (
    "slow",
    "timeout",
    "reset",
    "429",
    "429-retry-after",
    "500",
    "502",
    "503",
    "504",
    "html",
    "truncated",
    "wrong-cnr",
    "400",
    "401",
    "402",
    "403",
    "404",
    "418",
)
ERROR_CODES = {
    400: "INVALID_CNR",
    401: "INVALID_TOKEN",
    402: "INSUFFICIENT_CREDITS",
    403: "ACCOUNT_INACTIVE",
    404: "CASE_NOT_FOUND",
    429: "RATE_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}
PATH = re.compile(r"^/api/partner/case/([^/?]+)$")
PLACEHOLDER_DATES = ("", None, "--", "---", "0", "Next Date is not given", "Not Available")
PURPOSES = ("Arguments", "Evidence", "Framing of Issues", "Orders", "Appearance", "Cross Examination", "Judgment")
JUDGES = (
    "Hon'ble Justice A. K. Menon",
    "Hon'ble Justice R. Shah",
    "Principal District Judge",
    "Civil Judge Senior Division",
)


def parse_fault(text: str) -> tuple[str, str, int | None]:
    """Given CNR=KIND or CNR=KINDxN (the first N requests only), return (cnr, kind, times)."""
    cnr, _, spec = text.partition("=")
    kind, _, times = spec.partition("x") if re.search(r"x\d+$", spec) else (spec, "", "")
    if kind not in FAULT_KINDS or not cnr:
        raise ValueError(f"bad fault {text!r}: expected CNR=KIND[xN], KIND one of {', '.join(FAULT_KINDS)}")
    return cnr.upper(), kind, int(times) if times else None


def _format_date(rng: random.Random, day: dt.date) -> str:
    """Write a date the way some court site would."""
    style = rng.randrange(6)
    if style == 0:
        return day.isoformat()
    if style == 1:
        return day.strftime("%d-%m-%Y")
    if style == 2:
        return day.strftime("%d/%m/%Y")
    if style == 3:
        suffix = "th" if 11 <= day.day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day.day % 10, "th")
        return f"{day.day}{suffix} {day.strftime('%B %Y')}"
    if style == 4:
        return f"{day.isoformat()}T00:00:00Z"
    return day.isoformat()


@dataclass
class Answer:
    """What the simulator answers one request with."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay: float = 0.0
    drop: str | None = None  # "timeout": never answer; "reset": close the connection


@dataclass(frozen=True)
class Request:
    """One logged request."""

    at: float  # time.monotonic()
    cnr: str
    status: int
    fault: str | None
    authorized: bool


class Simulator:
    """The simulated API: its cases, its faults and its request log."""

    def __init__(
        self,
        token: str = "demo-token",
        today: dt.date | None = None,
        latency_ms: int = 0,
        fault_rate: float = 0.0,
        rate_fault: str = "500",
        retry_after_seconds: int = 1,
        timeout_seconds: float = 10.0,
        seed: int = 0,
        echo_authorization: bool = False,
    ) -> None:
        self.token = token
        self.today = today or dt.datetime.now(IST).date()
        self.latency = latency_ms / 1000
        self.fault_rate = fault_rate
        self.rate_fault = rate_fault
        self.retry_after_seconds = retry_after_seconds
        self.timeout_seconds = timeout_seconds
        self.echo_authorization = echo_authorization  # a careless provider: errors quote our Authorization header
        self.generation = 0
        self.faults: dict[str, list[list[Any]]] = {}
        self.log: list[Request] = []
        self.released = threading.Event()  # set on shutdown, so "timeout" answers end
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def add_fault(self, cnr: str, kind: str, times: int | None = None) -> None:
        """Make requests for cnr fail with kind (for the next `times` requests, or always)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}")
        self.faults.setdefault(cnr.upper(), []).append([kind, times])

    def _fault_for(self, cnr: str) -> str | None:
        with self._lock:
            for fault in self.faults.get(cnr, []):
                kind, times = fault
                if times is None:
                    return kind
                if times > 0:
                    fault[1] = times - 1
                    return kind
            if self.fault_rate and self._random.random() < self.fault_rate:
                return self.rate_fault
        return None

    def respond(self, path: str, authorization: str | None) -> Answer:
        """Answer one GET; log it."""
        match = PATH.match(path.split("?")[0])
        cnr = match.group(1).upper() if match else ""
        authorized = authorization == f"Bearer {self.token}"
        fault = self._fault_for(cnr) if match else None
        if not match:
            answer = self._error(404, "no such endpoint")
        elif not authorized:
            answer = self._error(401, "missing or unknown token")
        else:
            answer = self._answer(cnr, fault)
        answer.delay += self.latency
        if self.echo_authorization and answer.status >= 400 and authorization:
            answer = self._echoing(answer, authorization)
        with self._lock:
            self.log.append(Request(time.monotonic(), cnr, answer.status, fault, authorized))
        return answer

    def _echoing(self, answer: Answer, authorization: str) -> Answer:
        """The same error, quoting the Authorization header back: raw, URL-encoded and in a header."""
        body = json.loads(answer.body)
        quoted = urllib.parse.quote(authorization, safe="")
        body["error"]["message"] = f"{authorization!r} rejected ({quoted})"
        body["error"]["details"] = {"authorization": authorization}
        answer.body = json.dumps(body).encode()
        answer.headers = {**answer.headers, "X-Echo-Authorization": authorization}
        return answer

    def _answer(self, cnr: str, fault: str | None) -> Answer:
        if fault in ("401", "402", "403", "404", "400", "418", "500", "502", "503", "504"):
            return self._error(int(fault), f"simulated {fault}")
        if fault == "429":
            return self._error(429, "too many requests")
        if fault == "429-retry-after":
            answer = self._error(429, "too many requests")
            answer.headers["Retry-After"] = str(self.retry_after_seconds)
            return answer
        if fault in ("timeout", "reset"):
            return Answer(drop=fault)
        if fault == "html":
            return Answer(
                200,
                b"<html><body><h1>Service temporarily unavailable</h1></body></html>",
                {"Content-Type": "text/html"},
            )
        case = self.case_for(cnr)
        if fault == "wrong-cnr":
            case["data"]["courtCaseData"]["cnr"] = "DLHC010000012020"
        body = json.dumps(case).encode()
        if fault == "truncated":
            body = body[: len(body) // 2]
        return Answer(200, body, delay=2.0 if fault == "slow" else 0.0)

    def _error(self, status: int, message: str) -> Answer:
        body = {
            "error": {"code": ERROR_CODES.get(status, "ERROR"), "message": message, "details": {}},
            "meta": {"requestId": "sim"},
        }
        return Answer(status, json.dumps(body).encode())

    def case_for(self, cnr: str) -> dict[str, Any]:
        """Return the API body for a CNR: the same CNR, day and generation give the same case."""
        rng = random.Random(cnr)
        today, generation = self.today, self.generation
        status = rng.choice(("PENDING",) * 7 + ("DISPOSED", "TRANSFERRED", "Pending ", "UNDER TRIAL"))
        disposed = status == "DISPOSED"
        history = []
        for _ in range(rng.randrange(0, 6)):
            day = today - dt.timedelta(days=rng.randrange(20, 900))
            history.append(
                {
                    "hearingDate": _format_date(rng, day),
                    "businessOnDate": None,
                    "purpose": rng.choice(PURPOSES),
                    "judge": rng.choice(JUDGES),
                }
            )
        if history and rng.random() < 0.5:
            history.append(dict(history[0]))  # a duplicated row
        if rng.random() < 0.3:
            history.append({"hearingDate": rng.choice(PLACEHOLDER_DATES), "purpose": "Mention", "judge": None})
        rng.shuffle(history)  # out of order
        next_offset = rng.randrange(1, 60) + 7 * generation
        next_hearing: Any = (
            rng.choice(PLACEHOLDER_DATES) if disposed else _format_date(rng, today + dt.timedelta(days=next_offset))
        )
        interim = [
            {
                "orderNumber": str(number),
                "orderDate": _format_date(rng, today - dt.timedelta(days=30 * (5 - number))),
                "orderUrl": f"https://orders.example/{cnr}/{number}.pdf",
            }
            for number in range(1, 1 + rng.randrange(0, 3) + generation)
        ]
        data: dict[str, Any] = {
            "cnr": cnr,
            "caseNumber": f"{rng.choice(('CS', 'WP', 'CRA', 'ARB'))}/{rng.randrange(1, 9999)}/{rng.randrange(2005, today.year)}",
            "caseStatus": status,
            "nextHearingDate": next_hearing,
            "decisionDate": _format_date(rng, today - dt.timedelta(days=10)) if disposed else "--",
            "purpose": rng.choice(PURPOSES),
            "courtName": rng.choice(("Bombay High Court", "District Court, Aurangabad", "Delhi High Court")),
            "courtNo": str(rng.randrange(1, 40)),
            "judges": [rng.choice(JUDGES)] if rng.random() < 0.9 else [],
            "historyOfCaseHearings": history if rng.random() < 0.9 else None,
            "interimOrders": interim,
        }
        if disposed:
            data["judgmentOrders"] = [
                {"orderNumber": "J1", "orderDate": _format_date(rng, today - dt.timedelta(days=10)), "orderUrl": None}
            ]
        entity = {"dateModified": f"{today.isoformat()}T00:00:00Z"}
        return {"data": {"courtCaseData": data, "entityInfo": entity, "files": {}}, "meta": {"requestId": f"sim-{cnr}"}}


class SimulatorTransport(httpx.BaseTransport):
    """The simulator as an httpx transport: the same answers with no server (base URL sim://)."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.simulator.respond(request.url.path, request.headers.get("Authorization"))
        if answer.delay:
            time.sleep(answer.delay)
        if answer.drop == "timeout":
            raise httpx.ReadTimeout("simulated timeout", request=request)
        if answer.drop == "reset":
            raise httpx.RemoteProtocolError("simulated connection reset", request=request)
        return httpx.Response(answer.status, headers=answer.headers, content=answer.body, request=request)


class _Handler(BaseHTTPRequestHandler):
    server: SimulatorServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        simulator = self.server.simulator
        answer = simulator.respond(self.path, self.headers.get("Authorization"))
        if answer.delay and simulator.released.wait(answer.delay):
            return
        if answer.drop == "timeout":
            simulator.released.wait(simulator.timeout_seconds)
            self.close_connection = True
            return
        if answer.drop == "reset":
            self.close_connection = True
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the simulator keeps its own log
        pass


class SimulatorServer(ThreadingHTTPServer):
    """The simulator served over HTTP on 127.0.0.1; start() runs it in a thread, stop() ends it."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, simulator: Simulator, port: int = 0, host: str = "127.0.0.1") -> None:
        super().__init__((host, port), _Handler)
        self.simulator = simulator
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SimulatorServer:
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), name="ecourts-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.simulator.released.set()
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(timeout=5)


@click.command(name="ecourts-sim", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8700,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free one).",
)
@click.option("--token", default="demo-token", show_default=True, help="The API token it accepts.")
@click.option("--latency-ms", type=click.IntRange(min=0), default=0, show_default=True, help="Added to every answer.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="CNR=KIND[xN]",
    help=f"Inject a fault for a CNR (first N requests only). KIND: {', '.join(FAULT_KINDS)}.",
)
@click.option(
    "--fault-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of requests that fail at random.",
)
@click.option(
    "--rate-fault",
    type=click.Choice(FAULT_KINDS),
    default="500",
    show_default=True,
    help="The fault --fault-rate injects.",
)
@click.option(
    "--retry-after",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Seconds in the Retry-After of 429-retry-after.",
)
def simulator_command(
    port: int,
    token: str,
    latency_ms: int,
    faults: tuple[str, ...],
    fault_rate: float,
    rate_fault: str,
    retry_after: int,
) -> None:
    """Serve a simulator of the eCourts aggregator API on 127.0.0.1 until Ctrl-C.

    Cases are derived from the CNR: GET /api/partner/case/<CNR> with
    Authorization: Bearer <token>.
    """
    simulator = Simulator(
        token=token,
        latency_ms=latency_ms,
        fault_rate=fault_rate,
        rate_fault=rate_fault,
        retry_after_seconds=retry_after,
    )
    for text in faults:
        try:
            simulator.add_fault(*parse_fault(text))
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--fault") from None
    server = SimulatorServer(simulator, port)
    click.echo(f"eCourts simulator on {server.base_url} (token {token!r}); Ctrl-C stops it", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        simulator.released.set()
        server.server_close()


if __name__ == "__main__":
    main(simulator_command)
