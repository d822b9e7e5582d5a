"""Stopping a run: SIGTERM, SIGINT (SIGBREAK on Windows) and the time limit all set one StopFlag.

A stop must take effect within a second wherever the run is: between two
items, inside a long SQL statement, waiting for the database's write lock,
for eCourts, for an SMTP server, or sleeping to pace requests. So:

- the flag calls back whoever registered (each open SQLite connection
  registers its interrupt(), which aborts a running statement);
- every wait in casejobs is a wait on the flag (sleep, wait_for, as_completed),
  never a bare time.sleep or a blocking call in the main thread;
- Python runs signal handlers only between bytecodes of the main thread, and
  not while that thread is inside a C call such as sqlite3_step. The C-level
  handler also writes the signal's number to a wakeup socket, and a watcher
  thread sets the flag from there, so the interrupt reaches SQLite at once.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from lib.errors import StopRequested

POLL_SECONDS = 0.05
SIGNAL_NAMES = ("SIGTERM", "SIGINT", "SIGBREAK")  # SIGBREAK exists on Windows only
Result = TypeVar("Result")


class StopFlag:
    """Set once by a signal or the time limit; read by the job, waited on by every wait."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.hurry = False  # a second Ctrl-C while the run is being recorded: skip what can wait
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    def set(self, reason: str) -> None:
        """Ask the run to stop for reason (SIGTERM, SIGINT, SIGBREAK or timeout); the first reason wins."""
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
            callbacks = list(self._callbacks)
        self._event.set()
        for callback in callbacks:
            with contextlib.suppress(Exception):  # a closed connection cannot be interrupted: nothing to do
                callback()

    def is_set(self) -> bool:
        return self._event.is_set()

    def on_stop(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call callback when the flag is set (at once if it is already); return a function that unregisters it."""
        with self._lock:
            already = self.reason is not None
            if not already:
                self._callbacks.append(callback)
        if already:
            with contextlib.suppress(Exception):
                callback()

        def unregister() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._callbacks.remove(callback)

        return unregister

    def check(self) -> None:
        """Raise StopRequested if a stop was asked for."""
        if self._event.is_set():
            raise StopRequested(self.reason or "stop")

    def sleep(self, seconds: float) -> None:
        """Sleep for seconds, or raise StopRequested as soon as a stop is asked for."""
        if seconds > 0 and self._event.wait(seconds):
            self.check()
        self.check()

    def wait_for(self, future: concurrent.futures.Future[Result], grace: float = 0.0) -> Result:
        """Return the future's result; on a stop, give it grace seconds more, then raise StopRequested."""
        while not future.done():
            concurrent.futures.wait([future], timeout=POLL_SECONDS)
            if self._event.is_set() and not future.done():
                concurrent.futures.wait([future], timeout=grace)
                if not future.done():
                    self.check()
        return future.result()

    def as_completed(
        self, futures: Iterable[concurrent.futures.Future[Any]]
    ) -> Iterator[concurrent.futures.Future[Any]]:
        """Yield futures as they finish (those finishing together in the order given);
        raise StopRequested as soon as a stop is asked for.
        """
        order = {future: number for number, future in enumerate(futures)}
        pending = set(order)
        while pending:
            self.check()
            done, pending = concurrent.futures.wait(
                pending, timeout=POLL_SECONDS, return_when=concurrent.futures.FIRST_COMPLETED
            )
            yield from sorted(done, key=order.__getitem__)

    def join(self, thread: threading.Thread) -> None:
        """Wait for a thread to end; raise StopRequested as soon as a stop is asked for."""
        while thread.is_alive():
            thread.join(POLL_SECONDS)
            self.check()

    def run_in_thread(self, function: Callable[..., Result], *arguments: Any, grace: float = 0.3) -> Result:
        """Run a blocking call (an SMTP conversation, say) on a daemon thread and return its result.

        On a stop the call gets grace seconds to finish (so that a mail the
        server accepts just then is known as sent); after that StopRequested is
        raised and the thread is abandoned: it dies with the process.
        """
        return self.wait_for(start_in_thread(function, *arguments), grace=grace)


def start_in_thread(function: Callable[..., Result], *arguments: Any) -> concurrent.futures.Future[Result]:
    """Start a call on a daemon thread of its own (work for a second core, or a blocking call) and
    return its future: StopFlag.wait_for() waits for it and a stop ends the wait; a stopped run never
    waits for the thread itself, which dies with the process."""
    future: concurrent.futures.Future[Result] = concurrent.futures.Future()
    # The caller's context goes along, so that the thread's log lines carry the run's job and run_id.
    context = contextvars.copy_context()
    threading.Thread(
        target=context.run, args=(_settle, future, function, arguments), name=function.__name__, daemon=True
    ).start()
    return future


def _settle(future: concurrent.futures.Future[Any], function: Callable[..., Any], arguments: tuple[Any, ...]) -> None:
    """Run function and put its result (or what it raised) into future, unless the future was cancelled."""
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(function(*arguments))
    except BaseException as error:
        future.set_exception(error)


class DaemonPool:
    """A fixed set of daemon worker threads: like ThreadPoolExecutor, but a stopped run never waits for them.

    ThreadPoolExecutor joins its workers when the interpreter exits, so a
    request that hangs for its full read timeout would hold the process after
    the run was recorded. Daemon workers are simply abandoned.
    """

    def __init__(self, workers: int, name: str) -> None:
        self._tasks: list[
            tuple[concurrent.futures.Future[Any], Callable[..., Any], tuple[Any, ...], contextvars.Context]
        ] = []
        self._ready = threading.Condition()
        self._closed = False
        for number in range(max(1, workers)):
            threading.Thread(target=self._work, name=f"{name}-{number}", daemon=True).start()

    def submit(self, function: Callable[..., Result], *arguments: Any) -> concurrent.futures.Future[Result]:
        future: concurrent.futures.Future[Result] = concurrent.futures.Future()
        with self._ready:
            self._tasks.append((future, function, arguments, contextvars.copy_context()))  # the run's log context
            self._ready.notify()
        return future

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._tasks and not self._closed:
                    self._ready.wait()
                if not self._tasks:
                    return
                future, function, arguments, context = self._tasks.pop(0)
            context.run(_settle, future, function, arguments)

    def close(self) -> None:
        """Cancel what has not started and let the workers end; never waits for one in flight."""
        with self._ready:
            for future, *_ in self._tasks:
                future.cancel()
            self._tasks.clear()
            self._closed = True
            self._ready.notify_all()


class SignalStopper:
    """Turns SIGTERM, SIGINT and SIGBREAK into a set StopFlag, for the life of one run.

    A second SIGINT raises KeyboardInterrupt at once (the person really means
    it) while the job works; while the run is being recorded it only sets
    flag.hurry, so that the finish line is still written.
    """

    def __init__(self, flag: StopFlag) -> None:
        self.flag = flag
        self.recording = False
        self._interrupts = 0
        self._previous: dict[int, Any] = {}
        self._previous_wakeup_fd: int | None = None
        self._sockets: tuple[socket.socket, socket.socket] | None = None

    def _numbers(self) -> list[signal.Signals]:
        return [getattr(signal, name) for name in SIGNAL_NAMES if hasattr(signal, name)]

    def install(self) -> SignalStopper:
        """Install the handlers and the watcher; a no-op outside the main thread (signals go there only)."""
        if threading.current_thread() is not threading.main_thread():
            return self
        for number in self._numbers():
            self._previous[number] = signal.signal(number, self._on_signal)
        reader, writer = socket.socketpair()
        writer.setblocking(False)
        self._sockets = (reader, writer)
        self._previous_wakeup_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        threading.Thread(target=self._watch, args=(reader,), name="signal-watcher", daemon=True).start()
        return self

    def _on_signal(self, number: int, frame: Any) -> None:
        name = signal.Signals(number).name
        if name == "SIGINT":
            self._interrupts += 1
            if self._interrupts >= 2:
                if self.recording:
                    self.flag.hurry = True
                    return
                raise KeyboardInterrupt
        self.flag.set(name)

    def _watch(self, reader: socket.socket) -> None:
        while True:
            try:
                data = reader.recv(64)
            except OSError:
                return
            if not data:
                return
            for number in data:
                with contextlib.suppress(ValueError):
                    name = signal.Signals(number).name
                    if name in SIGNAL_NAMES:
                        self.flag.set(name)

    def uninstall(self) -> None:
        """Put back the handlers and wakeup descriptor found at install()."""
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()
        if self._sockets is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd if self._previous_wakeup_fd is not None else -1)
            for end in self._sockets:
                end.close()
            self._sockets = None


@contextlib.contextmanager
def time_limit(flag: StopFlag, seconds: float | None) -> Iterator[None]:
    """Within the block, set the flag with reason `timeout` after seconds (None: no limit)."""
    timer = threading.Timer(seconds, flag.set, args=("timeout",)) if seconds else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()


def exit_on_terminate() -> None:
    """For a command that is not a job run (verify, restore): SIGTERM ends it with exit 143 through
    its `finally` blocks, so that it removes what it was writing."""
    if threading.current_thread() is threading.main_thread():

        def on_terminate(number: int, frame: Any) -> None:
            raise SystemExit(143)

        signal.signal(signal.SIGTERM, on_terminate)
