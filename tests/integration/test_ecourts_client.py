"""The eCourts client against the simulator served on 127.0.0.1: every fault of the error table."""

from __future__ import annotations

import itertools

import pytest

from lib.ecourts import CaseError, ClientConfig, EcourtsClient, StopRun
from lib.ecourts_sim import Simulator, SimulatorServer
from tests.conftest import ECOURTS_TOKEN
from tests.smtp_server import free_port

CNR = "MHAU010012342023"
OTHERS = [f"MHAU01{number:06d}2023" for number in range(2000, 2010)]


def client_for(server_url: str, **settings: object) -> EcourtsClient:
    config = {"base_url": server_url, "token": ECOURTS_TOKEN, "rate_per_minute": 60000, "backoff_seconds": 0.02}
    return EcourtsClient(ClientConfig(**{**config, "read_timeout": 1, **settings}))


def requests_for(simulator: Simulator, cnr: str = CNR) -> list:
    return [request for request in simulator.log if request.cnr == cnr]


@pytest.fixture
def client(ecourts: tuple[Simulator, SimulatorServer]):
    client = client_for(ecourts[1].base_url)
    yield client
    client.close()


def test_a_case_is_fetched_with_the_token(ecourts, client) -> None:
    simulator, _ = ecourts
    case = client.fetch(CNR)
    assert case.cnr == CNR
    assert [request.authorized for request in simulator.log] == [True]


@pytest.mark.parametrize(("fault", "reason"), [("400", "400 INVALID_CNR"), ("404", "404 CASE_NOT_FOUND")])
def test_case_errors_are_not_retried(ecourts, client, fault: str, reason: str) -> None:
    simulator, _ = ecourts
    simulator.add_fault(CNR, fault)
    with pytest.raises(CaseError, match=reason) as raised:
        client.fetch(CNR)
    assert not raised.value.upstream_fault
    assert len(requests_for(simulator)) == 1


@pytest.mark.parametrize(
    ("fault", "words"),
    [("401", "API token was refused"), ("402", "no credits"), ("403", "account is inactive")],
)
def test_refusals_stop_the_run(ecourts, client, fault: str, words: str) -> None:
    simulator, _ = ecourts
    simulator.add_fault(CNR, fault)
    with pytest.raises(StopRun, match=words):
        client.fetch(CNR)
    with pytest.raises(StopRun):
        client.fetch(OTHERS[0])
    assert len(simulator.log) == 1  # nothing more is sent


def test_a_wrong_token_is_a_401_stop(ecourts) -> None:
    _, server = ecourts
    client = client_for(server.base_url, token="not-the-token")
    with pytest.raises(StopRun, match="401"):
        client.fetch(CNR)
    client.close()


@pytest.mark.parametrize("fault", ["500", "502", "503", "504", "timeout", "reset", "429"])
def test_passing_faults_are_retried(ecourts, client, fault: str) -> None:
    simulator, _ = ecourts
    simulator.add_fault(CNR, fault, times=2)
    assert client.fetch(CNR).cnr == CNR
    assert [request.fault for request in requests_for(simulator)] == [fault, fault, None]
    assert (client.counters.requests, client.counters.retries) == (3, 2)


def test_retries_are_bounded(ecourts, client) -> None:
    simulator, _ = ecourts
    simulator.add_fault(CNR, "503")
    with pytest.raises(CaseError, match="gave up after 4 attempts") as raised:
        client.fetch(CNR)
    assert raised.value.upstream_fault
    assert len(requests_for(simulator)) == 4


def test_retry_after_is_honoured(ecourts, client) -> None:
    simulator, _ = ecourts
    simulator.retry_after_seconds = 1
    simulator.add_fault(CNR, "429-retry-after", times=1)
    client.fetch(CNR)
    first, second = requests_for(simulator)
    assert second.at - first.at >= 1.0


def test_backoff_doubles_between_attempts(ecourts) -> None:
    simulator, server = ecourts
    client = client_for(server.base_url, backoff_seconds=0.2)
    simulator.add_fault(CNR, "500", times=3)
    client.fetch(CNR)
    times = [request.at for request in requests_for(simulator)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4 and gaps[2] >= 0.8
    client.close()


@pytest.mark.parametrize(
    ("fault", "reason"), [("html", "not JSON"), ("truncated", "not JSON"), ("wrong-cnr", "another CNR")]
)
def test_broken_answers_fail_the_case_without_retry(ecourts, client, fault: str, reason: str) -> None:
    simulator, _ = ecourts
    simulator.add_fault(CNR, fault)
    with pytest.raises(CaseError, match=reason):
        client.fetch(CNR)
    assert len(requests_for(simulator)) == 1


def test_a_slow_answer_within_the_timeout_is_fine(ecourts) -> None:
    simulator, server = ecourts
    client = client_for(server.base_url, read_timeout=5)
    simulator.add_fault(CNR, "slow")
    assert client.fetch(CNR).cnr == CNR
    client.close()


def test_nobody_listening_fails_after_the_retries() -> None:
    client = client_for(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(CaseError, match="unreachable") as raised:
        client.fetch(CNR)
    assert raised.value.upstream_fault and client.counters.requests == 4
    client.close()


def test_the_breaker_trips_after_consecutive_upstream_failures(ecourts) -> None:
    simulator, server = ecourts
    client = client_for(server.base_url, retries=0, breaker_threshold=3)
    for cnr in OTHERS[:3]:
        simulator.add_fault(cnr, "html")
    for cnr in OTHERS[:3]:
        with pytest.raises(CaseError):
            client.fetch(cnr)
    with pytest.raises(StopRun, match="circuit breaker"):
        client.fetch(OTHERS[3])
    assert client.counters.breaker_tripped
    assert len(simulator.log) == 3
    client.close()


def test_a_success_resets_the_breaker(ecourts) -> None:
    simulator, server = ecourts
    client = client_for(server.base_url, retries=0, breaker_threshold=2)
    simulator.add_fault(OTHERS[0], "500")
    simulator.add_fault(OTHERS[2], "500")
    for cnr, fails in ((OTHERS[0], True), (OTHERS[1], False), (OTHERS[2], True), (OTHERS[3], False)):
        if fails:
            with pytest.raises(CaseError):
                client.fetch(cnr)
        else:
            client.fetch(cnr)
    assert not client.counters.breaker_tripped
    client.close()


def test_requests_are_paced(ecourts) -> None:
    simulator, server = ecourts
    client = client_for(server.base_url, rate_per_minute=600)  # one every 0.1 s
    for cnr in OTHERS[:5]:
        client.fetch(cnr)
    times = [request.at for request in simulator.log]
    assert times[-1] - times[0] >= 0.4 - 0.01
    client.close()


def test_the_token_is_in_no_error_message(ecourts, client) -> None:
    simulator, _ = ecourts
    messages = []
    for fault, cnr in zip(("400", "html", "wrong-cnr", "503"), OTHERS, strict=False):
        simulator.add_fault(cnr, fault)
        with pytest.raises(CaseError) as raised:
            client.fetch(cnr)
        messages.append(str(raised.value))
    assert all(ECOURTS_TOKEN not in message for message in messages)


def test_faults_injected_at_a_rate(ecourts) -> None:
    simulator, server = ecourts
    simulator.fault_rate, simulator.rate_fault = 1.0, "502"
    client = client_for(server.base_url, retries=1)
    with pytest.raises(CaseError, match="upstream error 502"):
        client.fetch(CNR)
    simulator.fault_rate = 0.0
    assert client.fetch(CNR).cnr == CNR
    assert [request.fault for request in simulator.log] == ["502", "502", None]
    client.close()
