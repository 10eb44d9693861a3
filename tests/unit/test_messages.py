"""Message parsing: every type parses, every rejection says what to fix, ids are deterministic."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.messages import (
    AdjustPoints,
    AdjustStamps,
    AfterFieldDateExpiry,
    Cause,
    ChangeTier,
    ConfirmPoints,
    CustomerForget,
    CustomerRemoved,
    CustomerUpserted,
    DurationExpiry,
    DurationFromFieldExpiry,
    ExpirePoints,
    ExpireTier,
    FixedDateExpiry,
    ManageTier,
    OrderCancelled,
    OrderPaid,
    OrderRefunded,
    RedeemReward,
    RevokeReward,
    SendReminders,
    TierChanged,
    TierChangedData,
    derive_id,
)
from topics.codec import INPUT_TYPES, MessageError, parse_message, to_json

ENVELOPE = {"id": "evt-1", "customer_id": "cust-1", "occurred_at": "2025-03-01T12:00:00+02:00"}
ORDER = {
    "order_id": "o-1",
    "total": "129.90",
    "currency": "EUR",
    "items": [{"sku": "BEAN-1", "quantity": 2, "unit_price": "64.95", "categories": ["coffee"]}],
}


def message(kind: str, data: dict[str, Any] | None = None, **envelope: Any) -> dict[str, Any]:
    body: dict[str, Any] = {**ENVELOPE, "type": kind, **envelope}
    if data is not None:
        body["data"] = data
    return body


VALID = [
    (
        message("customer.upserted", {"email": "Ana@Example.com", "first_name": "Ana"}),
        CustomerUpserted,
    ),
    (message("customer.removed", {"reason": "asked to leave"}), CustomerRemoved),
    (message("customer.removed"), CustomerRemoved),
    (message("customer.forget", {"reason": "erasure request"}), CustomerForget),
    (message("order.paid", ORDER), OrderPaid),
    (
        message("order.refunded", {"order_id": "o-1", "refund_id": "r-1", "amount": "10.00"}),
        OrderRefunded,
    ),
    (
        message(
            "order.refunded",
            {"order_id": "o-1", "refund_id": "r-1", "items": [{"sku": "A", "quantity": 1}]},
        ),
        OrderRefunded,
    ),
    (message("order.refunded", {"order_id": "o-1", "refund_id": "r-1"}), OrderRefunded),
    (message("order.cancelled", {"order_id": "o-1"}), OrderCancelled),
    (message("points.adjust", {"delta": -10, "expires_in_months": None}), AdjustPoints),
    (
        message("points.adjust", {"delta": 200, "expires_in_months": 1, "customer_note": "Bonus"}),
        AdjustPoints,
    ),
    (message("stamps.adjust", {"delta": -24}), AdjustStamps),
    (message("reward.redeem", {"reward_id": "tote-bag"}), RedeemReward),
    (message("reward.revoke", {"grant_id": "g-1"}), RevokeReward),
    (message("tier.change", {"tier": "Gold", "notify": False}), ChangeTier),
    (message("tier.manage", {"action": "renew", "strategy": "rules"}), ManageTier),
    (
        message(
            "tier.manage",
            {"action": "upgrade", "strategy": "specific", "tier": "Gold", "group_id": "staff"},
            customer_id="group:staff",
        ),
        ManageTier,
    ),
    (message("tier.expire", {"due_at": "2025-06-01T00:00:00Z"}, source="system"), ExpireTier),
    (message("points.expire", {"due_at": "2025-06-01T00:00:00Z"}, source="system"), ExpirePoints),
    (
        message("points.confirm", {"due_at": "2025-06-01T00:00:00Z"}, source="system"),
        ConfirmPoints,
    ),
    (
        message("reminder.due", {"due_at": "2025-06-01T00:00:00Z"}, source="system"),
        SendReminders,
    ),
]


@pytest.mark.parametrize(("raw", "expected"), VALID, ids=lambda v: getattr(v, "__name__", ""))
def test_valid_examples_parse_as_their_type(raw: dict[str, Any], expected: type) -> None:
    parsed = parse_message(json.dumps(raw).encode())
    assert type(parsed) is expected
    assert parsed.type == raw["type"]
    assert parse_message(raw) == parsed  # dict and bytes give the same message


def test_every_input_type_has_a_valid_example() -> None:
    assert {raw["type"] for raw, _ in VALID} == set(INPUT_TYPES)


REJECTED = [
    (b"\xff\xfe", "invalid_encoding", "not UTF-8"),
    (b"{not json", "invalid_json", "not valid JSON"),
    (b"[1, 2]", "invalid_json", "one JSON object"),
    (message("points.gift", {"delta": 1}), "unknown_type", "unknown type 'points.gift'; known"),
    ({**ENVELOPE, "data": {}}, "unknown_type", "type: no type"),
    (
        message("points.adjust", {"delta": 0}),
        "invalid_message",
        "data.delta: must not be 0; send a positive number to add points or a negative one",
    ),
    (message("stamps.adjust", {"delta": 0}), "invalid_message", "to add stamps"),
    (message("points.adjust", {"delta": "5"}), "invalid_message", "data.delta: must be a whole"),
    (message("points.adjust", {"delta": 1.5}), "invalid_message", "data.delta: must be a whole"),
    (
        message("points.adjust", {"delta": 5, "expires_in_months": 0}),
        "invalid_message",
        "data.expires_in_months: must be >= 1",
    ),
    (
        message("order.paid", {**ORDER, "total": 129.9}),
        "invalid_message",
        'data.total: money must be a decimal string like "129.90"',
    ),
    (
        message("order.paid", {**ORDER, "total": 129}),
        "invalid_message",
        "data.total: money must be a decimal string",
    ),
    *(
        (
            message("order.paid", {**ORDER, "total": text}),
            "invalid_message",
            'data.total: money must be a decimal string like "129.90"',
        )
        # Shapes Decimal() would take but the schema's ASCII-digits pattern refuses.
        for text in ("1_000", " 12.50 ", "1E+3", "\u0661\u0662", "12.", ".5", "NaN")
    ),
    (
        message("order.paid", {**ORDER, "total": "-1.00"}),
        "invalid_message",
        "data.total: must not be negative",
    ),
    (
        message("order.paid", {**ORDER, "total": "1.23456"}),
        "invalid_message",
        "at most 4 decimal places",
    ),
    (
        message("order.paid", {**ORDER, "currency": "eur"}),
        "invalid_message",
        "data.currency: must be a 3-letter ISO 4217",
    ),
    (
        message("order.paid", {**ORDER, "items": [{"sku": "A", "quantity": 0, "unit_price": "1"}]}),
        "invalid_message",
        "data.items[0].quantity: must be >= 1",
    ),
    (
        message("order.paid", {"total": "1.00", "currency": "EUR"}),
        "invalid_message",
        "data.order_id: is required",
    ),
    (
        message(
            "order.refunded",
            {
                "order_id": "o",
                "refund_id": "r",
                "amount": "1.00",
                "items": [{"sku": "A", "quantity": 1}],
            },
        ),
        "invalid_message",
        "data: send either amount or items, not both",
    ),
    (
        message("order.refunded", {"order_id": "o", "refund_id": "r", "amount": "0"}),
        "invalid_message",
        "amount must be greater than 0",
    ),
    (
        message("points.adjust", {"delta": 1}, occurred_at="2025-03-01T12:00:00"),
        "invalid_message",
        "occurred_at: timestamp has no UTC offset",
    ),
    (
        message("points.adjust", {"delta": 1}, occurred_at="last tuesday"),
        "invalid_message",
        "occurred_at: must be an RFC 3339 timestamp",
    ),
    (message("points.adjust", {"delta": 1}, id=""), "invalid_message", "id: must have at least"),
    (
        message("points.adjust", {"delta": 1}, customer_id="x" * 201),
        "invalid_message",
        "customer_id: must have at most 200",
    ),
    (
        message("customer.upserted", {"email": "not-an-email"}),
        "invalid_message",
        "data.email: must be an email address",
    ),
    (
        message("tier.manage", {"action": "upgrade", "strategy": "specific"}),
        "invalid_message",
        "strategy 'specific' needs a tier",
    ),
    (
        message("tier.manage", {"action": "upgrade", "strategy": "rules", "tier": "Gold"}),
        "invalid_message",
        "strategy 'rules' picks the tier itself",
    ),
    (
        message("tier.manage", {"action": "promote", "strategy": "rules"}),
        "invalid_message",
        "data.action: must be 'upgrade', 'downgrade' or 'renew'",
    ),
    (
        message("tier.manage", {"action": "upgrade", "strategy": "rules", "group_id": "staff"}),
        "invalid_message",
        "customer_id: must be 'group:staff'",
    ),
    (
        message("tier.manage", {"action": "upgrade", "strategy": "rules"}, customer_id="group:x"),
        "invalid_message",
        "data.group_id: is required",
    ),
    (
        message(
            "tier.manage",
            {
                "action": "upgrade",
                "strategy": "specific",
                "tier": "Gold",
                "expiry": {"kind": "forever"},
            },
        ),
        "invalid_message",
        "data.expiry: unknown 'kind' 'forever'",
    ),
    (
        message(
            "tier.manage",
            {
                "action": "upgrade",
                "strategy": "specific",
                "tier": "Gold",
                "expiry": {"kind": "duration"},
            },
        ),
        "invalid_message",
        "data.expiry: give days, months or both",
    ),
    (
        message(
            "tier.manage",
            {
                "action": "upgrade",
                "strategy": "specific",
                "tier": "Gold",
                "expiry": {"kind": "fixed_date", "date": "31/01/2026"},
            },
        ),
        "invalid_message",
        "data.expiry.date: must be a date like 2026-01-31",
    ),
    (
        message(
            "tier.manage",
            {
                "action": "upgrade",
                "strategy": "specific",
                "tier": "Gold",
                "expiry": {"kind": "duration_from_field", "field": "f", "unit": "weeks"},
            },
        ),
        "invalid_message",
        "data.expiry.unit: must be 'days' or 'months'",
    ),
    (
        message("tier.change", {"tier": "Gold", "notify": "yes"}),
        "invalid_message",
        "data.notify: must be true or false",
    ),
    (b'{"type": "points.adjust", "data": {"delta": NaN}}', "invalid_json", "NaN"),
]


@pytest.mark.parametrize(("raw", "code", "text"), REJECTED, ids=[r[2][:40] for r in REJECTED])
def test_rejections_say_what_to_fix(raw: Any, code: str, text: str) -> None:
    payload = raw if isinstance(raw, bytes) else json.dumps(raw)
    with pytest.raises(MessageError) as caught:
        parse_message(payload)
    assert caught.value.code == code
    assert text in caught.value.message


def test_unknown_fields_are_ignored() -> None:
    raw = message("points.adjust", {"delta": 5, "new_field": [1]}, future={"x": 1})
    parsed = parse_message(raw)
    assert isinstance(parsed, AdjustPoints)
    assert parsed.data.delta == 5


def test_money_is_exact_and_timestamps_are_utc() -> None:
    parsed = parse_message(message("order.paid", ORDER))
    assert isinstance(parsed, OrderPaid)
    assert parsed.data.total == Decimal("129.90")
    assert parsed.occurred_at == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    out = json.loads(to_json(parsed))
    assert out["data"]["total"] == "129.90"
    assert out["occurred_at"] == "2025-03-01T10:00:00Z"


def test_extended_field_numbers_stay_exact() -> None:
    raw = (
        b'{"id": "e", "customer_id": "c", "occurred_at": "2025-01-01T00:00:00Z", "type": '
        b'"order.paid", "data": {"order_id": "o", "total": "1", "currency": "EUR", '
        b'"extended_fields": {"days": 60, "ratio": 0.1, "vip": true, "channel": "web"}}}'
    )
    parsed = parse_message(raw)
    assert isinstance(parsed, OrderPaid)
    assert parsed.data.extended_fields == {
        "days": 60,
        "ratio": Decimal("0.1"),
        "vip": True,
        "channel": "web",
    }
    assert type(parsed.data.extended_fields["days"]) is int


@pytest.mark.parametrize(
    ("expiry", "expected"),
    [
        ({"kind": "fixed_date", "date": "2026-01-31"}, FixedDateExpiry),
        ({"kind": "duration", "days": 90}, DurationExpiry),
        ({"kind": "after_field_date", "field": "CheckOutDate", "days": 30}, AfterFieldDateExpiry),
        (
            {"kind": "duration_from_field", "field": "TrialPeriodDays", "unit": "days"},
            DurationFromFieldExpiry,
        ),
    ],
)
def test_expiry_kinds(expiry: dict[str, Any], expected: type) -> None:
    data = {"action": "upgrade", "strategy": "specific", "tier": "Gold", "expiry": expiry}
    parsed = parse_message(message("tier.manage", data))
    assert isinstance(parsed, ManageTier)
    assert type(parsed.data.expiry) is expected


def test_fixed_date_expiry_is_a_date() -> None:
    data = {
        "action": "upgrade",
        "strategy": "specific",
        "tier": "Gold",
        "expiry": {"kind": "fixed_date", "date": "2026-01-31"},
    }
    parsed = parse_message(message("tier.manage", data))
    assert isinstance(parsed, ManageTier)
    assert isinstance(parsed.data.expiry, FixedDateExpiry)
    assert parsed.data.expiry.date == date(2026, 1, 31)


def test_defaults() -> None:
    stamps = parse_message(message("stamps.adjust", {"delta": 3}))
    assert isinstance(stamps, AdjustStamps)
    assert stamps.data.customer_note == "Manual adjustment"
    refund = parse_message(message("order.refunded", {"order_id": "o", "refund_id": "r"}))
    assert isinstance(refund, OrderRefunded)
    assert refund.data.is_full
    batch = parse_message(message("tier.change", {"tier": "Gold"}, batch={"id": "b", "row": 3}))
    assert batch.batch is not None
    assert batch.batch.suppress_notifications
    upsert = parse_message(message("customer.upserted", {"email": " Ana@Example.COM "}))
    assert isinstance(upsert, CustomerUpserted)
    assert upsert.data.accepts_email
    assert upsert.data.email_key == "ana@example.com"
    assert upsert.data.groups is None


def test_messages_are_frozen() -> None:
    parsed = parse_message(message("points.adjust", {"delta": 5}))
    with pytest.raises(ValueError, match="frozen"):
        parsed.id = "other"  # type: ignore[misc]


def test_derive_id_is_deterministic_and_bounded() -> None:
    assert derive_id("evt-1", "tier.changed") == derive_id("evt-1", "tier.changed")
    assert derive_id("evt-1", "reward.granted", "gold", 0) == "evt-1:reward.granted:gold:0"
    assert derive_id("evt-1", "reward.granted", "gold", 0) != derive_id(
        "evt-1", "reward.granted", "gold", 1
    )
    long_a, long_b = derive_id("x" * 200, "tier.changed"), derive_id("x" * 199, "tier.changed")
    assert len(long_a) <= 200
    assert long_a != long_b
    assert long_a == derive_id("x" * 200, "tier.changed")


def test_output_serialisation_matches_the_contract() -> None:
    now = datetime(2025, 3, 1, 12, tzinfo=UTC)
    changed = TierChanged(
        id=derive_id("evt-1", "tier.changed"),
        customer_id="cust-1",
        occurred_at=now,
        data=TierChangedData(
            from_tier=None,
            to_tier="Gold",
            direction="up",
            cause=Cause(type="tier.change", id="evt-1"),
            program_version="abc123def456",
            notified=True,
            entry_rewards_granted=("evt-1:reward.granted:welcome-gold",),
        ),
    )
    out = json.loads(to_json(changed))
    assert out["type"] == "tier.changed"
    assert out["occurred_at"] == "2025-03-01T12:00:00Z"
    assert out["data"]["from_tier"] is None
    assert out["data"]["entry_rewards_granted"] == ["evt-1:reward.granted:welcome-gold"]
    assert out["source"] == "loyalty"


@given(
    amount=st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False),
    delta=st.integers(min_value=-(10**9), max_value=10**9).filter(bool),
)
def test_money_and_deltas_round_trip(amount: Decimal, delta: int) -> None:
    paid = parse_message(message("order.paid", {**ORDER, "total": str(amount)}))
    assert isinstance(paid, OrderPaid)
    assert paid.data.total == amount
    assert parse_message(to_json(paid)) == paid
    adjust = parse_message(message("points.adjust", {"delta": delta}))
    assert isinstance(adjust, AdjustPoints)
    assert adjust.data.delta == delta


@given(cause=st.text(min_size=1, max_size=400), parts=st.lists(st.text(max_size=50), max_size=4))
def test_derive_id_always_fits_an_envelope_id(cause: str, parts: list[str]) -> None:
    derived = derive_id(cause, "reward.granted", *parts)
    assert 1 <= len(derived) <= 200
    assert derived == derive_id(cause, "reward.granted", *parts)
