"""Sending plain-text mail with an HTML alternative over SMTP (STARTTLS, implicit TLS or plain).

One Mailer serves a whole run: it connects lazily, keeps the connection for
the next message, and after a few failed connections in a row stops trying
(every further message fails at once with the same reason) so that a dead
server cannot hold a run for minutes.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from lib.settings import Settings

CONNECTION_ATTEMPTS = 3


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

    def _connect(self) -> smtplib.SMTP:
        config = self.config
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
                connection.login(config.user, config.password or "")
        except smtplib.SMTPAuthenticationError as error:
            _close_quietly(connection)
            raise MailError(f"SMTP login refused: {error.smtp_code} {_text(error.smtp_error)}") from None
        except (OSError, smtplib.SMTPException) as error:
            _close_quietly(connection)
            self._failed_connections += 1
            self._connection_error = _describe(error)
            raise MailError(f"SMTP server unreachable: {self._connection_error}") from None
        self._failed_connections = 0
        return connection

    def send(self, mail: Mail) -> None:
        """Send one message; raise MailError with the reason if it was not accepted."""
        if not mail.to_address:
            raise MailError("no e-mail address")
        if self._connection is None:
            self._connection = self._connect()
        try:
            self._connection.send_message(self._message(mail))
        except smtplib.SMTPRecipientsRefused as error:
            code, reason = next(iter(error.recipients.values()))
            raise MailError(f"recipient refused: {code} {_text(reason)}") from None
        except smtplib.SMTPResponseException as error:
            raise MailError(f"message refused: {error.smtp_code} {_text(error.smtp_error)}") from None
        except (OSError, smtplib.SMTPException) as error:
            self.close()  # the connection is in an unknown state: the next message reconnects
            raise MailError(f"sending failed: {_describe(error)}") from None

    def _message(self, mail: Mail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.config.from_address
        message["To"] = formataddr((mail.to_name, mail.to_address))
        message["Subject"] = mail.subject
        message["Message-ID"] = make_msgid(domain=self.config.from_address.rpartition("@")[2] or None)
        message.set_content(mail.text)
        message.add_alternative(mail.html, subtype="html")
        return message

    def close(self) -> None:
        """Say goodbye to the server, if connected; never raises."""
        _close_quietly(self._connection)
        self._connection = None


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
