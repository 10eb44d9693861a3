"""Mail rendering and building: every kind renders, HTML is escaped, headers are deterministic."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import aiosmtplib
import pytest

from mail.context import Recipient, email_context, format_date, unsubscribe_link, value_text
from mail.render import MailRenderer, TemplateMissingError
from mail.smtp import (
    SmtpPermanentError,
    SmtpTransientError,
    SmtpUnavailableError,
    _classify,
    build_message,
    message_id,
    parse_address,
)
from models.outputs import NOTIFICATION_KINDS

SAMPLE = {
    "from_tier": "Silver",
    "to_tier": "Gold",
    "direction": "up",
    "expires_at": "2027-03-31T00:00:00+00:00",
    "benefits": ["Free shipping"],
    "points": 40,
    "balance": 10,
    "points_spent": 300,
    "card": 2,
    "stamps_balance": 1,
    "reward_id": "tote-bag",
    "rewards": [
        {
            "reward_id": "welcome-gold",
            "reward_name": "10 EUR off",
            "code": "GOLD7K2M9Q",
            "value": {"kind": "amount_off", "amount": "10"},
            "valid_until": "2027-01-15T10:00:00+00:00",
        }
    ],
}


def _context(kind: str, first_name: str = "Ada", **extra: object) -> dict[str, object]:
    return email_context(
        kind=kind,
        notification_id=f"n-{kind}",
        recipient=Recipient("c1", "ada@example.test", first_name, "Lovelace"),
        template_data={**SAMPLE, **extra},
        program_name="Coffee & Co",
        currency="EUR",
    )


@pytest.mark.parametrize("kind", NOTIFICATION_KINDS)
def test_every_notification_kind_the_rules_emit_renders_both_parts(kind: str) -> None:
    rendered = MailRenderer().render(kind, _context(kind))
    assert rendered.subject
    assert "\n" not in rendered.subject
    assert "Hello Ada," in rendered.text
    assert "<html" in rendered.html
    assert "Coffee &amp; Co" in rendered.html
    assert "Coffee & Co" in rendered.text


def test_customer_text_is_escaped_in_html_and_plain_in_text() -> None:
    rendered = MailRenderer().render(
        "tier_upgraded", _context("tier_upgraded", "<script>x</script>")
    )
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;x&lt;/script&gt;" in rendered.html
    assert "Hello <script>x</script>," in rendered.text


def test_upgrade_names_the_tier_and_the_codes_with_their_value() -> None:
    rendered = MailRenderer().render("tier_upgraded", _context("tier_upgraded"))
    assert "Gold" in rendered.subject
    for part in (rendered.text, rendered.html):
        assert "GOLD7K2M9Q" in part
        assert "10 EUR off" in part
        assert "15 January 2027" in part


def test_a_shop_folder_overrides_single_templates(tmp_path: Path) -> None:
    (tmp_path / "tier_upgraded.subject.txt").write_text("Hooray {{ data.to_tier }}!")
    renderer = MailRenderer(tmp_path)
    assert renderer.render("tier_upgraded", _context("tier_upgraded")).subject == "Hooray Gold!"
    # The others still come from the package.
    assert "Gold" in renderer.render("tier_downgraded", _context("tier_downgraded")).text


def test_missing_override_folder_and_unknown_kind_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(TemplateMissingError, match="LOYALTY_MAIL_TEMPLATES_DIR"):
        MailRenderer(tmp_path / "nope")
    with pytest.raises(TemplateMissingError, match="tier_upgraded"):
        MailRenderer().render("birthday", _context("birthday"))


def test_message_has_both_parts_and_a_message_id_from_the_notification_id() -> None:
    rendered = MailRenderer().render("tier_upgraded", _context("tier_upgraded"))
    at = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    first = build_message(
        rendered,
        sender="loyalty@shop.test",
        recipient="ada@example.test",
        notification_id="n-1",
        sent_at=at,
        list_unsubscribe="https://shop.test/unsubscribe?c=c1",
    )
    again = build_message(
        rendered,
        sender="loyalty@shop.test",
        recipient="ada@example.test",
        notification_id="n-1",
        sent_at=at,
    )
    assert first["Message-ID"] == again["Message-ID"] == message_id("n-1", "loyalty@shop.test")
    assert first["Message-ID"].endswith("@shop.test>")
    assert message_id("n-2", "loyalty@shop.test") != first["Message-ID"]
    assert first["List-Unsubscribe"] == "<https://shop.test/unsubscribe?c=c1>"
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert again["List-Unsubscribe"] is None
    parsed = message_from_bytes(first.as_bytes(), policy=policy.default)
    assert parsed.get_body(preferencelist=("plain",)) is not None
    assert parsed.get_body(preferencelist=("html",)) is not None


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "no-at-sign",
        "two@@example.test",
        "a b@example.test",
        "x@localhost",
        "x@example.test\r\nBcc: y@example.test",
    ],
)
def test_invalid_addresses_are_permanent_errors(bad: str) -> None:
    with pytest.raises(SmtpPermanentError, match="invalid address"):
        parse_address(bad)


def test_smtp_errors_are_sorted_by_what_to_do() -> None:
    assert isinstance(_classify(aiosmtplib.SMTPResponseException(550, "no")), SmtpPermanentError)
    assert isinstance(_classify(aiosmtplib.SMTPResponseException(451, "later")), SmtpTransientError)
    assert isinstance(_classify(aiosmtplib.SMTPResponseException(421, "bye")), SmtpUnavailableError)
    assert isinstance(_classify(ConnectionRefusedError()), SmtpUnavailableError)
    refused = aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(550, "unknown user", "x@example.test")]
    )
    assert isinstance(_classify(refused), SmtpPermanentError)
    login = _classify(aiosmtplib.SMTPAuthenticationError(535, "bad credentials"))
    assert isinstance(login, SmtpUnavailableError)
    assert "LOYALTY_SMTP_PASSWORD" in login.reason


def test_context_helpers() -> None:
    assert value_text({"kind": "amount_off", "amount": "10.00"}, "EUR") == "10.00 EUR off"
    assert value_text({"kind": "percent_off", "percent": "15"}, "EUR") == "15% off"
    assert value_text({"kind": "product", "product": "coffee"}, "EUR") == "a free coffee"
    assert value_text(None, "EUR") == ""
    assert format_date("2027-03-31T23:00:00+00:00") == "31 March 2027"
    assert (
        unsubscribe_link("https://s.test/u?c={customer_id}", "a/b&c")
        == "https://s.test/u?c=a%2Fb%26c"
    )
    assert unsubscribe_link("", "c1") == ""
