"""Scrubbing secrets from whatever leaves the process or lands in the database.

The eCourts token, the SMTP password and the monitoring ping URLs must never
be stored or shown. An upstream may echo them back in an error body, raw, as
`Bearer <token>`, URL-encoded, HTML- or JSON-escaped; every such spelling is
blanked, case-insensitively, from text before it reaches a log line, the
ledger, an audit row, a notification or a case's sync_error.

The secrets are the process's own (one run, one set of settings), so they
are remembered here once, when the settings are loaded.
"""

from __future__ import annotations

import html
import json
import re
import urllib.parse
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"
SHORTEST = 4  # a one-letter "secret" would blank every word that holds its letter


def spellings(secret: str) -> set[str]:
    """Return the ways a provider might echo a secret back."""
    return {
        secret,
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        html.escape(secret),
        html.escape(secret).replace("&#x27;", "&#39;"),  # MarkupSafe and Jinja write ' this way
        json.dumps(secret)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),  # PHP's json_encode escapes every /
    }


class Scrubber:
    """Blanks every spelling of the secrets it knows from text and from nested data."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._spellings: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Remember more secrets (empty and very short ones are ignored)."""
        for secret in secrets:
            if secret and len(secret) >= SHORTEST:
                self._spellings |= {spelling for spelling in spellings(secret) if len(spelling) >= SHORTEST}
        if self._spellings:
            longest_first = sorted(self._spellings, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(spelling) for spelling in longest_first), re.IGNORECASE)

    def text(self, value: str) -> str:
        """Given text, return it with every known secret blanked."""
        if self._pattern is None or not value:
            return value
        return self._pattern.sub(REDACTED, value)

    def data(self, value: Any) -> Any:
        """Given text, a list or a dict (nested), return a copy with every string scrubbed."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.data(key): self.data(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(item) for item in value]
        return value


PROCESS = Scrubber()


def remember(secrets: Iterable[str]) -> None:
    """Add this process's secrets (from the settings) to the scrubber every writer uses."""
    PROCESS.add(secrets)


def scrub(value: str) -> str:
    """Return text with every known secret of this process blanked."""
    return PROCESS.text(value)


def scrub_data(value: Any) -> Any:
    """Return nested data with every known secret of this process blanked from its strings."""
    return PROCESS.data(value)
