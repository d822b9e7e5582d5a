"""Secrets blanked from text and data in every spelling an upstream might echo them in, in any letter case."""

from __future__ import annotations

import html
import json
import urllib.parse

import pytest

from lib.scrub import REDACTED, Scrubber

SECRET = 'Tok&en"5/+ <z>\\q'  # printable ASCII with every character some escaping changes


@pytest.mark.parametrize(
    "spelling",
    [
        SECRET,
        SECRET.upper(),
        SECRET.lower(),
        urllib.parse.quote(SECRET, safe=""),
        urllib.parse.quote(SECRET, safe="").lower(),  # %2f as well as %2F
        urllib.parse.quote_plus(SECRET),
        html.escape(SECRET),
        html.escape(SECRET).upper(),
        json.dumps(SECRET)[1:-1],
    ],
)
def test_every_spelling_of_a_secret_is_blanked(spelling: str) -> None:
    scrubber = Scrubber([SECRET])
    assert scrubber.text(f"401 from upstream: Bearer {spelling} was refused") == (
        f"401 from upstream: Bearer {REDACTED} was refused"
    )


@pytest.mark.parametrize(("secret", "echoed"), [("tok'en-1234", "tok&#39;en-1234"), ("tok/en+1234", "tok\\/en+1234")])
def test_common_alternative_html_and_json_escapes_are_blanked(secret: str, echoed: str) -> None:
    assert Scrubber([secret]).text(f"error: {echoed}") == f"error: {REDACTED}"


def test_every_occurrence_is_blanked_and_the_longest_secret_first() -> None:
    scrubber = Scrubber(["abcd", "abcdef-token"])
    assert scrubber.text("abcdef-token, ABCD and abcd") == f"{REDACTED}, {REDACTED} and {REDACTED}"


@pytest.mark.parametrize("secret", ["", "a", "ab", "abc"])
def test_a_secret_shorter_than_four_characters_is_ignored(secret: str) -> None:
    scrubber = Scrubber([secret])
    text = "a cab for abc, and abcd"
    assert scrubber.text(text) == text


def test_nested_data_is_scrubbed_in_keys_and_values_and_left_whole_otherwise() -> None:
    scrubber = Scrubber(["s3cr3t-token"])
    data = {"s3cr3t-token": 1, "errors": ["got S3CR3T-TOKEN", ("s3cr3t-token",)], "count": 3, "none": None}
    assert scrubber.data(data) == {
        REDACTED: 1,
        "errors": [f"got {REDACTED}", [REDACTED]],
        "count": 3,
        "none": None,
    }
    assert data["errors"][0] == "got S3CR3T-TOKEN"  # a copy: the original is not changed


def test_a_scrubber_that_knows_no_secret_changes_nothing_and_learns_more_later() -> None:
    scrubber = Scrubber()
    assert scrubber.text("token tok-live-9876") == "token tok-live-9876"
    scrubber.add(["tok-live-9876"])
    assert scrubber.text("token tok-live-9876") == f"token {REDACTED}"
    assert scrubber.text("") == ""
