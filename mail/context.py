"""What a template sees: the customer, the program, the request's data and its rewards, tidied.

Every template gets the same names, whatever the notification kind:

* ``customer``: ``first_name``, ``last_name``, ``name`` (may be empty), ``customer_id``;
* ``program``: ``name``, ``currency``;
* ``data``: the request's ``template_data`` as the rules wrote it (``to_tier``, ``points`` ...);
* ``rewards``: the rewards the email is about, always a list (empty when none), each with
  ``reward_id``, ``reward_name``, ``description``, ``code``, ``value_text`` ("10.00 EUR off") and
  ``valid_until``, whether the rules sent one reward or several;
* ``kind``, ``notification_id``, ``unsubscribe_url``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

REWARD_KEYS = ("reward_id", "reward_name", "code", "value", "valid_until", "grant_id")


@dataclass(frozen=True)
class Recipient:
    """Who an email goes to, as the customer's current record (or the request) says."""

    customer_id: str
    email: str
    first_name: str | None = None
    last_name: str | None = None

    @property
    def name(self) -> str:
        """Return the display name, empty when unknown."""
        return " ".join(part for part in (self.first_name, self.last_name) if part)


def value_text(value: Any, currency: str) -> str:
    """Describe a reward's value for a reader: "10.00 EUR off", "15% off", "a free tote-bag"."""
    if not isinstance(value, Mapping):
        return ""
    kind = value.get("kind")
    if kind == "amount_off" and value.get("amount") is not None:
        return f"{_number(value['amount'])} {value.get('currency') or currency} off"
    if kind == "percent_off" and value.get("percent") is not None:
        return f"{_number(value['percent'])}% off"
    if kind == "product" and value.get("product"):
        return f"a free {value['product']}"
    return ""


def _number(raw: Any) -> str:
    try:
        number = Decimal(str(raw))
    except InvalidOperation:
        return str(raw)
    return f"{number:f}"


def rewards_of(data: Mapping[str, Any], currency: str) -> list[dict[str, Any]]:
    """Return the rewards an email is about: ``data["rewards"]``, or the one reward in ``data``."""
    raw = data.get("rewards")
    if isinstance(raw, list):
        entries = [entry for entry in raw if isinstance(entry, Mapping)]
    elif any(data.get(key) for key in ("reward_id", "code")):
        entries = [{key: data.get(key) for key in REWARD_KEYS}]
    else:
        entries = []
    return [
        {
            "reward_id": entry.get("reward_id"),
            "reward_name": entry.get("reward_name") or entry.get("name") or entry.get("reward_id"),
            "code": entry.get("code"),
            "description": entry.get("description"),
            "value_text": value_text(entry.get("value"), currency),
            "valid_until": entry.get("valid_until"),
            "grant_id": entry.get("grant_id"),
        }
        for entry in entries
    ]


def email_context(
    *,
    kind: str,
    notification_id: str,
    recipient: Recipient,
    template_data: Mapping[str, Any],
    program_name: str,
    currency: str,
    unsubscribe_url: str = "",
) -> dict[str, Any]:
    """Return the names every template is rendered with."""
    return {
        "kind": kind,
        "notification_id": notification_id,
        "customer": {
            "customer_id": recipient.customer_id,
            "first_name": recipient.first_name or "",
            "last_name": recipient.last_name or "",
            "name": recipient.name,
        },
        "program": {"name": program_name, "currency": currency},
        "data": dict(template_data),
        "rewards": rewards_of(template_data, currency),
        "unsubscribe_url": unsubscribe_url,
    }


def format_date(value: Any) -> str:
    """Format an RFC 3339 timestamp or a datetime as "31 March 2027" (the ``date`` filter)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        return f"{value.day} {value:%B %Y}"
    return "" if value is None else str(value)


def unsubscribe_link(template: str, customer_id: str) -> str:
    """Fill ``{customer_id}`` in the configured List-Unsubscribe address (empty: none)."""
    # Quoted: a customer id may hold characters with a meaning in a URL ("/", "?", "&").
    return template.replace("{customer_id}", quote(customer_id, safe="")) if template else ""
