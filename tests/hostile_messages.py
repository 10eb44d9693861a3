"""Hypothesis strategies of hostile input messages, each knowing what the worker must do with it.

Every generated ``Hostile`` is built from a valid message of one of the twelve contract types
on the four input topics, then (for the malformed ones) broken in exactly one way, so its fate
follows from how it was built, never from running the code under test:

- ``malformed``: the decoder refuses it; it must land on the dead-letter topic with ``code``
  (``invalid_json``, ``invalid_encoding``, ``unknown_type`` or ``invalid_message``);
- ``refused``: valid, but the rules refuse it with ``code``; recorded on the customer's activity
  when the customer exists (``customer_id`` set), else dead-lettered with that code;
- ``applied``: valid and applied (hostile text such as ``$`` or dotted keys, NUL characters and
  long names is stored as data).

The valid ones are meant for customers that exist before they are sent (``existing``) and stay
in the lowest tier below any threshold, so no refusal depends on the order between topics;
``phantoms`` are customer ids nobody ever creates. The malformed ones
are drawn by tests/hostile_mutations.py. Used by the unit property test
(tests/unit/test_hostile_decode.py) and the worker run (tests/integration/test_hostile_volume.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Literal, TypeVar

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from models.values import format_timestamp
from topics import names

T = TypeVar("T")
Expect = Literal["malformed", "refused", "applied"]

TOPIC_OF: dict[str, str] = {
    "customer.upserted": names.CUSTOMERS,
    "customer.removed": names.CUSTOMERS,
    "customer.forget": names.CUSTOMERS,
    "order.paid": names.ORDERS,
    "order.refunded": names.ORDERS,
    "order.cancelled": names.ORDERS,
    "points.adjust": names.ADJUSTMENTS,
    "stamps.adjust": names.ADJUSTMENTS,
    "reward.redeem": names.ADJUSTMENTS,
    "reward.revoke": names.ADJUSTMENTS,
    "tier.change": names.TIER_COMMANDS,
    "tier.manage": names.TIER_COMMANDS,
}
"""The twelve contract input types and the topic each is published on."""

TIERS = ("Silver", "Gold", "Platinum")
"""Tiers above the base tier of program.example.yaml (a tier command to one of them applies)."""
GROUP = "staff"
"""The one group program.example.yaml declares."""
CURRENCY = "EUR"


@dataclass(frozen=True)
class Hostile:
    """One message to publish and what must become of it."""

    topic: str
    """Contract name of the input topic."""
    key: str
    value: bytes | None
    expect: Expect
    code: str | None
    """Dead-letter code (malformed), refusal code (refused), None (applied)."""
    customer_id: str | None
    """The existing customer whose activity records it; None when it goes to dead letters."""
    id: str | None
    label: str
    """How it was built (mutation name), for failure messages and the tallies."""
    data: dict[str, Any] | None = None
    """The valid message's payload (applied ones: what the state must show)."""

    @property
    def dead_lettered(self) -> bool:
        """Whether this message must end on the dead-letter topic."""
        return self.expect == "malformed" or self.customer_id is None


# --- text -------------------------------------------------------------------------------------

HOSTILE_TEXT = (
    "$ne",
    "$where",
    '{"$gt": ""}',
    '{"$set": {"points_balance": 1e9}}',
    "a.b.$c",
    "nul\x00inside",
    "\x00",
    "'; db.dropDatabase(); //",
    "<script>alert(1)</script>",
    '=HYPERLINK("http://x")',
    "Zoë Ångström 日本語 🎉",
    "\u202eevil",
    "line\nbreak\ttab",
    "__proto__",
)
HOSTILE_KEYS = ("$where", "$gt", "a.b", "$", ".", "x.$y", "nul\x00key", "__proto__", "_id", "")


@cache
def hostile_text(max_size: int = 200) -> st.SearchStrategy[str]:
    """Text an attacker would send: operators, dotted keys, NUL and odd Unicode, or long runs."""
    return st.one_of(
        st.sampled_from(HOSTILE_TEXT),
        st.text(max_size=min(max_size, 40)),
        st.builds(lambda c, n: c * n, st.sampled_from("x$.\x00é"), st.integers(1, max_size)),
    ).map(lambda text: text[:max_size])


@cache
def long_text(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    """One character repeated: a huge string without drawing each character."""
    return st.builds(
        lambda c, n: c * n, st.sampled_from("x\x00$é"), st.integers(min_size, max_size)
    )


# --- valid messages ---------------------------------------------------------------------------


def envelope(kind: str, customer_id: str, mid: str, at: datetime, data: Any) -> dict[str, Any]:
    """Return a message as the contract spells it."""
    return {
        "id": mid,
        "type": kind,
        "customer_id": customer_id,
        "occurred_at": format_timestamp(at),
        "source": "hostile-test",
        "data": data,
    }


def encode(value: Any) -> bytes:
    """JSON as a sender would write it (non-ASCII as UTF-8)."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


@cache
def money(low: int = 0, high: int = 5000) -> st.SearchStrategy[str]:
    """A decimal string of cents (at most 50.00 by default)."""
    return st.integers(low, high).map(lambda cents: f"{cents // 100}.{cents % 100:02d}")


_EXTENDED_VALUES = st.one_of(
    hostile_text(50), st.booleans(), st.integers(-(10**15), 10**15), st.just(12.5)
)
EXTENDED_FIELDS = st.dictionaries(st.sampled_from(HOSTILE_KEYS), _EXTENDED_VALUES, max_size=4)
"""Extended fields with operator-looking and dotted keys, scalar values (valid)."""
_ITEMS = st.lists(
    st.fixed_dictionaries(
        {
            "sku": st.sampled_from(["beans", "mug", "$sku", "a.b"]),
            "quantity": st.integers(1, 3),
            "unit_price": money(0, 1000),
        }
    ),
    max_size=2,
)
_NOTE = st.none() | hostile_text(200)


def data_for(kind: str, draw: st.DrawFn, mid: str) -> dict[str, Any]:
    """A valid payload of any contract type (the base a malformed message is broken from)."""
    if kind == "customer.upserted":
        return {
            "email": f"{mid}@example.com",
            "first_name": draw(hostile_text(300)),
            "accepts_email": draw(st.booleans()),
        }
    if kind in {"customer.removed", "customer.forget"}:
        return {"reason": draw(hostile_text(100))}
    if kind == "order.paid":
        items = draw(_ITEMS)
        return {
            "order_id": f"o-{mid}",
            "total": draw(money(100, 2000)),
            "currency": CURRENCY,
            "items": items,
            "extended_fields": draw(EXTENDED_FIELDS),
        }
    if kind == "order.refunded":
        return {"order_id": f"never-paid-{mid}", "refund_id": f"r-{mid}", "amount": "1.00"}
    if kind == "order.cancelled":
        return {"order_id": f"never-paid-{mid}"}
    if kind == "points.adjust":
        return {
            "delta": draw(st.integers(1, 10)),
            "internal_note": draw(_NOTE),
            "customer_note": draw(_NOTE),
        }
    if kind == "stamps.adjust":
        return {"delta": draw(st.integers(1, 2)), "internal_note": draw(_NOTE)}
    if kind == "reward.redeem":
        return {"reward_id": draw(st.sampled_from(["no-such-reward", "$gt", "a.b"]))}
    if kind == "reward.revoke":
        return {"grant_id": f"no-such-grant-{mid}"}
    if kind == "tier.change":
        return {"tier": draw(st.sampled_from(TIERS)), "notify": False}
    assert kind == "tier.manage", kind
    return {
        "action": "upgrade",
        "strategy": "specific",
        "tier": draw(st.sampled_from(TIERS)),
        "expiry": {"kind": "duration", "months": draw(st.integers(1, 24))},
        "notify": False,
        "extended_fields": draw(EXTENDED_FIELDS),
    }


@dataclass(frozen=True)
class Population:
    """Who the messages are about and when they are processed."""

    existing: Sequence[str]
    """Customers created (with email ``<id>@example.com``) before the hostile messages."""
    phantoms: Sequence[str]
    """Customer ids nobody ever creates."""
    now: datetime
    """About when the worker processes them (far-future dates are years after it)."""

    def email(self, customer_id: str) -> str:
        """The email a customer of ``existing`` was created with."""
        return f"{customer_id}@example.com"

    def recent(self, draw: st.DrawFn) -> datetime:
        """A time in the past week (accepted)."""
        return self.now - timedelta(minutes=draw(st.integers(1, 7 * 24 * 60)))

    def far_future(self, draw: st.DrawFn) -> datetime:
        """A time from a day to 150 years ahead, before 2200 (valid, refused as in the future)."""
        return self.now + timedelta(days=draw(st.integers(1, 150 * 365)))


@st.composite
def applied(draw: st.DrawFn, people: Population, mid: str) -> Hostile:
    """A valid message for an existing customer that the rules apply."""
    cid = draw(st.sampled_from(people.existing))
    kind = draw(
        st.sampled_from(["customer.upserted", "points.adjust", "stamps.adjust", "order.paid"])
    )
    data = data_for(kind, draw, mid)
    if kind == "customer.upserted":
        data["email"] = people.email(cid)
        # The id in the name: an upsert that changes nothing would leave no activity entry.
        data["first_name"] = f"{data['first_name']} {mid}"
        data["last_name"] = draw(long_text(1, 100_000) | hostile_text(100))
    value = envelope(kind, cid, mid, people.recent(draw), data)
    return Hostile(TOPIC_OF[kind], cid, encode(value), "applied", None, cid, mid, kind, data)


@st.composite
def tier_command(draw: st.DrawFn, people: Population, customer_id: str, mid: str) -> Hostile:
    """The one tier command of a customer (a second one could be refused as no upgrade)."""
    kind = draw(st.sampled_from(["tier.change", "tier.manage"]))
    data = data_for(kind, draw, mid)
    value = envelope(kind, customer_id, mid, people.recent(draw), data)
    return Hostile(
        TOPIC_OF[kind], customer_id, encode(value), "applied", None, customer_id, mid, kind
    )


# A refusal the rules give whatever else the customer received (balances stay far below these).
_REFUSALS: dict[str, tuple[str, Callable[[str], dict[str, Any]]]] = {
    "insufficient_points": ("points.adjust", lambda mid: {"delta": -(10**9)}),
    "insufficient_stamps": ("stamps.adjust", lambda mid: {"delta": -10_000}),
    "unknown_reward": ("reward.redeem", lambda mid: {"reward_id": "$where"}),
    "unknown_grant": ("reward.revoke", lambda mid: {"grant_id": f"g.$-{mid}"}),
    "unknown_tier": ("tier.change", lambda mid: {"tier": "Platnum.$"}),
    "unknown_order": ("order.cancelled", lambda mid: {"order_id": f"never-{mid}"}),
    "currency_mismatch": (
        "order.paid",
        lambda mid: {"order_id": f"usd-{mid}", "total": "9.99", "currency": "USD", "items": []},
    ),
}


@st.composite
def refused(draw: st.DrawFn, people: Population, mid: str) -> Hostile:
    """A valid message the rules refuse: on an existing customer's activity, or dead-lettered."""
    case = draw(st.sampled_from(["rule", "future", "future_phantom", "email", "group"]))
    cid = draw(st.sampled_from(people.existing))
    when = people.recent(draw)
    if case == "rule":
        code = draw(st.sampled_from(sorted(_REFUSALS)))
        kind, payload = _REFUSALS[code]
        data = payload(mid)
    elif case in {"future", "future_phantom"}:
        code, kind = "occurred_at_in_future", draw(st.sampled_from(sorted(TOPIC_OF)))
        data = data_for(kind, draw, mid)
        when = people.far_future(draw)
        if case == "future_phantom":
            cid = draw(st.sampled_from(people.phantoms))
    elif case == "email":
        # Another existing customer's email: refused on the customer, or dead-lettered
        # when the upsert would have created a new one.
        code, kind = "email_taken", "customer.upserted"
        owner = draw(st.sampled_from(people.existing).filter(lambda c: c != cid))
        data = {"email": people.email(owner).upper()}
        if draw(st.booleans()):
            cid = draw(st.sampled_from(people.phantoms))
    else:
        code, kind = "unknown_group", "tier.manage"
        group = draw(st.sampled_from(["no-such-group", "$gt", "a.b"]))
        cid = "group:" + group
        data = {"action": "renew", "strategy": "rules", "group_id": group}
    value = envelope(kind, cid, mid, when, data)
    on = cid if cid in people.existing else None
    return Hostile(TOPIC_OF[kind], cid, encode(value), "refused", code, on, mid, f"{kind}/{case}")


def generate(
    count: int, strategy: Callable[[int], st.SearchStrategy[T]], *, per_example: int = 50
) -> list[T]:
    """Draw ``count`` messages, the n-th from ``strategy(n)``, ``per_example`` per example.

    ``strategy(n)`` must draw the same way whatever ``n`` is (ids of one width, say), or
    Hypothesis sees generation depend on outside state.
    Derandomized (the same list on every run) and without the example database, so a failure
    replays as it happened. One example cannot hold thousands of draws (its choice budget is
    a few thousand choices), so the messages are spread over ``count / per_example`` examples.
    """
    drawn: list[T] = []

    @settings(
        max_examples=-(-count // per_example),
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def draw_some(data: st.DataObject) -> None:
        # As many draws in every example: the n of an id counts every message drawn so far.
        drawn.extend(data.draw(strategy(len(drawn))) for _ in range(per_example))

    draw_some()
    assert len(drawn) >= count, f"Hypothesis stopped after {len(drawn)} of {count} messages"
    return drawn[:count]


def extremes(people: Population) -> list[Hostile]:
    """Malformed messages at the size limits, whose dead letters would outgrow a Kafka message.

    Written out rather than drawn: each must be there on every run. Raw NUL bytes take six
    bytes each once escaped in the letter's JSON, and base64 takes a third more.
    """
    cid = people.existing[0]
    note = '{"id": "x", "type": "points.adjust", "data": {"internal_note": "'
    cases = [
        ("raw NUL x 300k", "invalid_json", note.encode() + b"\x00" * 300_000 + b'"}}'),
        ("not UTF-8 x 900k", "invalid_encoding", b"\xff" * 900_000),
        ("escaped NUL x 150k", "invalid_message", (note + "\\u0000" * 150_000 + '"}}').encode()),
        ("text x 1M", "invalid_json", b"<" + b"x" * 1_000_000),
    ]
    return [
        Hostile(names.ADJUSTMENTS, cid, raw, "malformed", code, None, None, f"extreme {label}")
        for label, code, raw in cases
    ]
