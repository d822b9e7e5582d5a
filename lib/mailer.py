"""Sending plain-text mail with an HTML alternative over SMTP (STARTTLS, implicit TLS or plain).

One Mailer serves a whole run: it connects lazily, keeps the connection for
the next message, and after a few failed connections in a row stops trying
(every further message fails at once with the same reason) so that a dead
server cannot hold a run for minutes. A refused login is tried once per run:
every further message fails at once with that reason, so that a wrong
password never locks the firm's mail account.

Names and addresses come from the application's data: control characters
never reach a header (names are cleaned, addresses checked), so nothing can
be injected.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
import time
import unicodedata
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import TYPE_CHECKING, Any

from lib.settings import Settings

if TYPE_CHECKING:
    from lib.stop import StopFlag

CONNECTION_ATTEMPTS = 3
LONGEST_NAME = 100  # characters of a person's name shown in a header or a greeting
ADDRESS = re.compile(r"^[^\s@<>()\[\],;:\"\\]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def clean_name(name: str | None) -> str:
    """Given a person's name from the data, return it safe for a header or a greeting: no control
    or invisible formatting characters, spaces collapsed, at most LONGEST_NAME characters."""
    text = "".join(" " if unicodedata.category(character)[0] in "CZ" else character for character in name or "")
    text = " ".join(text.split())
    return text[:LONGEST_NAME].rstrip()


def is_mail_address(address: str | None) -> bool:
    """True for an address we can put in a header as it is: local@domain, no spaces or control characters."""
    return bool(address) and len(address) <= 254 and ADDRESS.fullmatch(address) is not None


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to send mail."""

    host: str
    port: int
    security: str
    user: str | None
    password: str | None
    from_address: str
    timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig | None:
        """Return the SMTP configuration, or None when no SMTP host is set."""
        host = settings.get("smtp.host")
        if not host:
            return None
        return cls(
            host=host,
            port=settings.get("smtp.port"),
            security=settings.get("smtp.security"),
            user=settings.get("smtp.user"),
            password=settings.secret("smtp.password"),
            from_address=settings.get("smtp.from_address"),
            timeout=settings.get("smtp.timeout"),
        )


@dataclass(frozen=True)
class Mail:
    """One message: recipient, subject, plain text and its HTML alternative."""

    to_address: str
    to_name: str
    subject: str
    text: str
    html: str


class MailError(Exception):
    """A message was not accepted; the text is the reason, safe to store and show."""


class Mailer:
    """Sends Mail over one reused SMTP connection."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._connection: smtplib.SMTP | None = None
        self._failed_connections = 0
        self._connection_error: str | None = None
        self.login_refused: str | None = None  # once set, no further login is tried in this run
        self.unreachable: str | None = None  # set when a connection failed: send_each tries no further
        # Set when the server stopped answering in the middle of a message: every further message
        # would wait the whole timeout too, so none is tried in this run (the next run retries).
        self.stalled: str | None = None

    @property
    def gave_up(self) -> str | None:
        """Why no further message is tried in this run (a refused login, a server that stopped
        answering), or None."""
        return self.login_refused or self.stalled

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        if self.gave_up:
            raise MailError(self.gave_up)
        if self._failed_connections >= CONNECTION_ATTEMPTS:
            raise MailError(f"SMTP server unreachable: {self._connection_error}")
        connection: smtplib.SMTP | None = None
        try:
            if config.security == "tls":
                context = ssl.create_default_context()
                connection = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout, context=context)
            else:
                connection = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
                if config.security == "starttls":
                    connection.starttls(context=ssl.create_default_context())
            if config.user:
                _login_once(connection, config.user, config.password or "")
        except smtplib.SMTPAuthenticationError as error:
            _close_quietly(connection)
            self.login_refused = f"SMTP login refused: {error.smtp_code} {_text(error.smtp_error)}"
            raise MailError(self.login_refused) from None
        except (OSError, smtplib.SMTPException) as error:
            _close_quietly(connection)
            self._failed_connections += 1
            self._connection_error = _describe(error)
            self.unreachable = f"SMTP server unreachable: {self._connection_error}"
            raise MailError(self.unreachable) from None
        self._failed_connections = 0
        return connection

    def connect_only(self) -> None:
        """Connect, start TLS and log in as configured, sending nothing (jobctl doctor --probe)."""
        if self._connection is None:
            self._connection = self._connect()

    def send(self, mail: Mail) -> None:
        """Send one message; raise MailError with the reason if it was not accepted."""
        if not mail.to_address:
            raise MailError("no e-mail address")
        if not is_mail_address(mail.to_address):
            raise MailError("not a valid e-mail address")
        if self._connection is None:
            self._connection = self._connect()
        started = time.monotonic()
        try:
            self._connection.send_message(self._message(mail))
        except smtplib.SMTPRecipientsRefused as error:
            code, reason = next(iter(error.recipients.values()))
            raise MailError(f"recipient refused: {code} {_text(reason)}") from None
        except smtplib.SMTPResponseException as error:
            raise MailError(f"message refused: {error.smtp_code} {_text(error.smtp_error)}") from None
        except (OSError, smtplib.SMTPException) as error:
            self.close()  # the connection is in an unknown state: the next message reconnects
            # smtplib reports a reply that never came as a lost connection: the time waited tells.
            if isinstance(error, socket.timeout | TimeoutError) or time.monotonic() - started >= self.config.timeout:
                waited = f"no answer in {self.config.timeout} s"
                self.stalled = f"SMTP server stopped answering ({waited}): no more mail this run"
                self.unreachable = self.stalled
                raise MailError(self.stalled) from None
            raise MailError(f"sending failed: {_describe(error)}") from None

    def _message(self, mail: Mail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.config.from_address
        message["To"] = formataddr((clean_name(mail.to_name), mail.to_address))
        message["Subject"] = mail.subject
        message["Message-ID"] = make_msgid(domain=self.config.from_address.rpartition("@")[2] or None)
        message.set_content(mail.text)
        message.add_alternative(mail.html, subtype="html")
        return message

    def close(self) -> None:
        """Say goodbye to the server, if connected; never raises."""
        _close_quietly(self._connection)
        self._connection = None


def _login_once(connection: smtplib.SMTP, user: str, password: str) -> None:
    """Log in with one mechanism only: smtplib's login() tries each one the server offers, and
    every refused attempt counts towards locking the account."""
    connection.ehlo_or_helo_if_needed()
    offered = connection.esmtp_features.get("auth", "").upper().split()
    mechanism = next((name for name in ("PLAIN", "LOGIN", "CRAM-MD5") if name in offered), None)
    if mechanism is None:
        raise smtplib.SMTPException("the server offers no login mechanism casejobs knows (PLAIN, LOGIN, CRAM-MD5)")
    connection.user, connection.password = user, password
    methods = {"PLAIN": connection.auth_plain, "LOGIN": connection.auth_login, "CRAM-MD5": connection.auth_cram_md5}
    connection.auth(mechanism, methods[mechanism], initial_response_ok=True)


def _close_quietly(connection: smtplib.SMTP | None) -> None:
    if connection is not None:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            connection.quit()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _describe(error: BaseException) -> str:
    if isinstance(error, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return str(error) or type(error).__name__


def send_each(mailer: Mailer, mails: list[tuple[Any, Mail]], stop_flag: StopFlag | None = None) -> dict[Any, str]:
    """Send each (key, mail) in turn; return {key: reason} of those not accepted.

    With a stop_flag, each conversation runs on a thread a stop ends
    (StopRequested). A server that cannot be reached, or that refused the
    login, is not tried again for the rest: they fail with the same reason.
    """
    failures: dict[Any, str] = {}
    for key, mail in mails:
        if mailer.gave_up or mailer.unreachable:
            failures[key] = mailer.gave_up or mailer.unreachable or ""
            continue
        try:
            if stop_flag is not None:
                stop_flag.run_in_thread(mailer.send, mail)
            else:
                mailer.send(mail)
        except MailError as error:
            failures[key] = str(error)
    return failures
