"""Names and addresses from the application's data made safe for mail headers, and the message a Mailer builds."""

from __future__ import annotations

import email
import email.policy
from email.utils import getaddresses

import pytest

from lib.mailer import LONGEST_NAME, Mail, Mailer, MailError, SmtpConfig, clean_name, is_mail_address

CONFIG = SmtpConfig("smtp.firm.example", 587, "starttls", None, None, "casejobs@firm.example", 10)


def mail(to_address: str = "asha@firm.example", to_name: str = "Asha Rao") -> Mail:
    """Return a digest mail to the given person."""
    return Mail(to_address, to_name, "SLA digest 2026-11-28", "Hello,\n- one line\n", "<p>Hello,</p>")


@pytest.mark.parametrize(
    ("name", "cleaned"),
    [
        ("Asha Rao\r\nBcc: evil@attacker.example", "Asha Rao Bcc: evil@attacker.example"),
        ("Asha\tRao\x00\x1b[31m", "Asha Rao [31m"),
        ("  Asha \u00a0\u2003 Rao  ", "Asha Rao"),
        ("Asha\u200bRao\u202e\ufeff", "Asha Rao"),
        ("Anaïs Dévi-Ştefan 周", "Anaïs Dévi-Ştefan 周"),
        (None, ""),
        ("", ""),
    ],
)
def test_a_name_loses_control_and_invisible_characters_and_its_spaces_collapse(name: str | None, cleaned: str) -> None:
    assert clean_name(name) == cleaned


def test_a_long_name_is_cut_at_a_hundred_characters_without_a_trailing_space() -> None:
    assert clean_name("A" * 150) == "A" * LONGEST_NAME
    assert LONGEST_NAME == 100
    cut_at_a_space = "B" * 99 + " " + "C" * 20
    assert clean_name(cut_at_a_space) == "B" * 99


@pytest.mark.parametrize(
    "address", ["asha@firm.example", "asha.rao+sla@mail.firm.co.in", "o'brien@firm.example", "a@b-c.example"]
)
def test_a_plain_local_at_domain_address_can_be_mailed(address: str) -> None:
    assert is_mail_address(address)


@pytest.mark.parametrize(
    "address",
    [
        None,
        "",
        "asha",
        "asha@localhost",
        "asha rao@firm.example",
        "Asha <asha@firm.example>",
        "asha@firm.example, boss@firm.example",
        "asha@firm.example\r\nBcc: evil@attacker.example",
        "asha@firm.example\nBcc: evil@attacker.example",
        "asha@[127.0.0.1]",
        "asha@firm_example.com",
        "a" * 65 + "@firm.example",
        "asha@" + "d" * 250 + ".example",
    ],
)
def test_an_address_that_is_not_plain_or_could_carry_a_header_is_refused(address: str | None) -> None:
    assert not is_mail_address(address)


def test_an_address_with_a_trailing_newline_is_refused() -> None:
    assert not is_mail_address("asha@firm.example\n")


def test_a_hostile_name_cannot_inject_a_header_into_the_message() -> None:
    message = Mailer(CONFIG)._message(mail(to_name="Asha\r\nBcc: evil@attacker.example\r\nX-Injected: yes"))
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed["Bcc"] is None and parsed["X-Injected"] is None
    assert [address for _, address in getaddresses([str(parsed["To"])])] == ["asha@firm.example"]
    assert "\n" not in message["To"] and "\r" not in message["To"]


def test_a_name_with_a_comma_stays_one_recipient() -> None:
    message = Mailer(CONFIG)._message(mail(to_name="Rao, Asha (Senior Counsel)"))
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert getaddresses([str(parsed["To"])]) == [("Rao, Asha (Senior Counsel)", "asha@firm.example")]


def test_the_message_is_plain_text_with_an_html_alternative_from_the_configured_address() -> None:
    message = Mailer(CONFIG)._message(mail())
    assert (message["From"], message["Subject"]) == ("casejobs@firm.example", "SLA digest 2026-11-28")
    assert message["Message-ID"].endswith("@firm.example>")
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]


@pytest.mark.parametrize(("address", "reason"), [("", "no e-mail address"), ("asha", "not a valid e-mail address")])
def test_sending_to_an_address_that_cannot_be_mailed_fails_before_any_connection(address: str, reason: str) -> None:
    mailer = Mailer(SmtpConfig("smtp.invalid", 1, "none", None, None, "casejobs@firm.example", 0.1))
    with pytest.raises(MailError, match=f"^{reason}$"):
        mailer.send(mail(to_address=address))  # smtp.invalid: a connection would fail with another reason
