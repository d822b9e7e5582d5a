"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd), started and stopped by each test."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Recorder:
    """The server's handler: keeps every accepted message, refuses the recipients it is told to."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refused: set[str] = set()
        self.login_attempts = 0
        self.stall = False  # while true, a message's DATA is never answered (a server that hangs)
        self.stalled_messages = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refused:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.stall:
            self.stalled_messages += 1
            while self.stall:  # released when the test ends, so that the server stops cleanly
                await asyncio.sleep(0.05)
            return "451 4.3.0 gave up"
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted"


def _refusing_logins(recorder: Recorder):
    def refuse(server, session, envelope, mechanism, auth_data) -> AuthResult:
        recorder.login_attempts += 1
        return AuthResult(success=False, handled=False)

    return refuse


@contextmanager
def smtp_server(refuse_logins: bool = False) -> Iterator[tuple[Controller, Recorder]]:
    """Run an SMTP server on 127.0.0.1 for the block; yield its controller (with .port) and recorder."""
    recorder = Recorder()
    extra = {"auth_require_tls": False, "authenticator": _refusing_logins(recorder)} if refuse_logins else {}
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port(), **extra)
    controller.start()
    try:
        yield controller, recorder
    finally:
        recorder.stall = False
        controller.stop()
