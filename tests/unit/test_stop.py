"""The stop flag and every wait on it: the first reason wins, callbacks run once, waits end at a stop, the daemon
pool runs work and drops what is queued when closed, and futures finishing together come in the order given."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import pytest
import structlog

from lib.errors import StopRequested
from lib.stop import DaemonPool, StopFlag, start_in_thread, time_limit


def set_soon(flag: StopFlag, reason: str = "SIGTERM", seconds: float = 0.05) -> threading.Timer:
    """Set the flag from another thread a moment from now, as a signal or the time limit would."""
    timer = threading.Timer(seconds, flag.set, args=(reason,))
    timer.start()
    return timer


def test_the_first_reason_wins_and_each_callback_runs_once() -> None:
    flag, calls = StopFlag(), []

    def broken() -> None:
        raise RuntimeError("the connection is closed")

    flag.on_stop(broken)
    flag.on_stop(lambda: calls.append("interrupt"))
    assert not flag.is_set()
    flag.set("timeout")
    flag.set("SIGTERM")
    assert (flag.reason, flag.is_set(), calls) == ("timeout", True, ["interrupt"])


def test_a_callback_registered_after_the_stop_runs_at_once_and_an_unregistered_one_never() -> None:
    flag, calls = StopFlag(), []
    unregister = flag.on_stop(lambda: calls.append("gone"))
    unregister()
    unregister()  # twice is harmless
    flag.set("SIGINT")
    assert calls == []
    flag.on_stop(lambda: calls.append("late"))
    assert calls == ["late"]


def test_check_raises_with_the_reason_only_once_set() -> None:
    flag = StopFlag()
    flag.check()
    flag.set("SIGTERM")
    with pytest.raises(StopRequested, match="stop requested: SIGTERM") as raised:
        flag.check()
    assert raised.value.reason == "SIGTERM"


def test_sleep_returns_after_its_time_and_raises_as_soon_as_a_stop_comes() -> None:
    flag = StopFlag()
    flag.sleep(0.01)
    flag.sleep(0)
    set_soon(flag)
    began = time.monotonic()
    with pytest.raises(StopRequested):
        flag.sleep(30)
    assert time.monotonic() - began < 5
    with pytest.raises(StopRequested):
        flag.sleep(0)  # an already stopped run does not even start to sleep


def test_wait_for_gives_the_result_or_raises_after_the_grace_of_a_stop() -> None:
    flag = StopFlag()
    done: concurrent.futures.Future[int] = concurrent.futures.Future()
    done.set_result(7)
    assert flag.wait_for(done) == 7

    never: concurrent.futures.Future[int] = concurrent.futures.Future()
    set_soon(flag)
    began = time.monotonic()
    with pytest.raises(StopRequested):
        flag.wait_for(never, grace=0.1)
    assert time.monotonic() - began < 5


def test_a_result_that_arrives_within_the_grace_of_a_stop_is_still_returned() -> None:
    flag = StopFlag()
    flag.set("SIGTERM")
    late: concurrent.futures.Future[str] = concurrent.futures.Future()
    threading.Timer(0.05, late.set_result, args=("sent",)).start()
    assert flag.wait_for(late, grace=5) == "sent"


def test_futures_finishing_together_are_yielded_in_the_order_given() -> None:
    futures: list[concurrent.futures.Future[int]] = [concurrent.futures.Future() for _ in range(5)]
    for number in (4, 2, 0, 3, 1):
        futures[number].set_result(number)
    assert [future.result() for future in StopFlag().as_completed(futures)] == [0, 1, 2, 3, 4]


def test_as_completed_raises_as_soon_as_a_stop_comes() -> None:
    flag = StopFlag()
    first: concurrent.futures.Future[int] = concurrent.futures.Future()
    second: concurrent.futures.Future[int] = concurrent.futures.Future()
    first.set_result(1)
    iterator = flag.as_completed([first, second])
    assert next(iterator) is first
    set_soon(flag)
    with pytest.raises(StopRequested):
        next(iterator)


def test_a_daemon_pool_runs_work_on_daemon_threads_and_close_cancels_what_is_queued() -> None:
    pool = DaemonPool(1, "test-pool")
    release = threading.Event()
    started = threading.Event()

    def blocking() -> str:
        started.set()
        release.wait(10)
        return threading.current_thread().name

    running = pool.submit(blocking)
    assert started.wait(5)
    queued = [pool.submit(lambda number=number: number) for number in range(3)]
    pool.close()
    assert all(future.cancelled() for future in queued)
    release.set()
    assert running.result(timeout=5) == "test-pool-0"


def test_a_daemon_pool_hands_back_results_and_errors() -> None:
    pool = DaemonPool(2, "test-pool")
    try:
        good = pool.submit(lambda first, second: first + second, 2, 3)
        bad = pool.submit(lambda: 1 / 0)
        assert good.result(timeout=5) == 5
        with pytest.raises(ZeroDivisionError):
            bad.result(timeout=5)
    finally:
        pool.close()


def test_run_in_thread_returns_the_calls_result_or_raises_its_error() -> None:
    def refuse() -> None:
        raise ValueError("recipient refused")

    flag = StopFlag()
    assert flag.run_in_thread(lambda text: text.upper(), "sent") == "SENT"
    with pytest.raises(ValueError, match="recipient refused"):
        flag.run_in_thread(refuse)


def test_the_time_limit_sets_the_flag_with_reason_timeout_and_none_means_no_limit() -> None:
    flag = StopFlag()
    with time_limit(flag, 0.05), pytest.raises(StopRequested):
        flag.sleep(30)
    assert flag.reason == "timeout"
    unlimited = StopFlag()
    with time_limit(unlimited, None):
        unlimited.sleep(0.1)
    assert not unlimited.is_set()


def test_work_on_other_threads_keeps_the_runs_log_context() -> None:
    def bound() -> dict:
        """What the log processor adds to a line logged here (structlog 20.2 has no get_contextvars)."""
        return structlog.contextvars.merge_contextvars(None, "info", {})

    structlog.contextvars.bind_contextvars(job="nightlyBackup", run_id="r-1")
    try:
        aside = start_in_thread(bound)
        pool = DaemonPool(2, "test")
        pooled = pool.submit(bound)
        assert aside.result(timeout=30) == {"job": "nightlyBackup", "run_id": "r-1"}
        assert pooled.result(timeout=30) == {"job": "nightlyBackup", "run_id": "r-1"}
        pool.close()
    finally:
        structlog.contextvars.clear_contextvars()
