"""Bad input never stops the stream: ``parse_message`` raises ``MessageError`` and nothing else."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from topics.codec import INPUT_TYPES, MessageError, parse_message

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ENVELOPE: dict[str, Any] = {
    "id": "m-1",
    "customer_id": "c-1",
    "occurred_at": "2025-03-01T12:00:00Z",
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(
        [
            "1e400",
            "-1",
            "NaN",
            "Infinity",
            "1" + "0" * 60,
            "0.00001",
            "9999-12-31T23:59:59-23:59",
            "0001-01-01T00:00:00+23:59",
            "2025-03-01T12:00:00+05:30",
            "2025-03-01",
            "fixed_date",
            "duration",
            "upgrade",
            "specific",
            "Gold",
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "order_id",
        "refund_id",
        "total",
        "amount",
        "currency",
        "items",
        "sku",
        "quantity",
        "unit_price",
        "delta",
        "expires_in_months",
        "tier",
        "action",
        "strategy",
        "expiry",
        "kind",
        "date",
        "days",
        "months",
        "field",
        "unit",
        "extended_fields",
        "email",
        "due_at",
        "reward_id",
        "grant_id",
        "group_id",
        "groups",
    ]
)
data_objects = st.dictionaries(keys, json_values, max_size=8)


def _only_message_error(raw: Any) -> None:
    with contextlib.suppress(MessageError):
        parse_message(raw)


@FAST
@given(raw=st.binary(max_size=300))
def test_any_bytes_parse_or_raise_message_error(raw: bytes) -> None:
    _only_message_error(raw)


@FAST
@given(value=json_values)
def test_any_json_value_parses_or_raises_message_error(value: Any) -> None:
    _only_message_error(json.dumps(value).encode())


@FAST
@given(
    kind=st.sampled_from(INPUT_TYPES),
    data=st.one_of(data_objects, json_values),
    envelope=st.dictionaries(
        st.sampled_from(["id", "customer_id", "occurred_at", "batch", "source"]),
        json_values,
        max_size=3,
    ),
)
def test_any_envelope_of_a_known_type_parses_or_raises_message_error(
    kind: str, data: Any, envelope: dict[str, Any]
) -> None:
    raw = {**ENVELOPE, **envelope, "type": kind, "data": data}
    _only_message_error(json.dumps(raw).encode())
    _only_message_error(raw)


def _order(**data: Any) -> dict[str, Any]:
    body = {"order_id": "o1", "total": "10.00", "currency": "EUR", **data}
    return {**ENVELOPE, "type": "order.paid", "data": body}


def _text(value: dict[str, Any]) -> str:
    return json.dumps(value)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("[" * 100_000 + "]" * 100_000, "nests deeper"),
        ('{"a":' * 100_000 + "1" + "}" * 100_000, "nests deeper"),
        (
            _text({**ENVELOPE, "type": "points.adjust", "data": {"delta": 0}}).replace(
                '"delta": 0', '"delta": 1' + "0" * 5000
            ),
            "too large",
        ),
        (
            _text(_order(extended_fields={"n": 0})).replace('"n": 0', '"n": 1e999999999'),
            "extended_fields.n",
        ),
        (_text({**_order(), "occurred_at": "9999-12-31T23:59:59-23:59"}), "occurred_at"),
        (_text({**_order(), "occurred_at": "0001-01-01T00:00:00+23:59"}), "occurred_at"),
        (_text({**_order(), "occurred_at": "1999-12-31T23:59:59Z"}), "occurred_at: must be from"),
        (_text({**_order(), "occurred_at": "2200-01-01T00:00:00Z"}), "occurred_at: must be from"),
        (_text(_order(order_id="\ud800")), "lone surrogate"),
        (_text(_order(total="1" + "0" * 400)), "data.total: must be below"),
        (_text(_order(total="1000000000000")), "data.total: must be below"),
        (
            _text(_order(items=[{"sku": "a", "quantity": 10**7, "unit_price": "1"}])),
            "quantity: must be <= 1000000",
        ),
        (
            _text({**ENVELOPE, "type": "points.adjust", "data": {"delta": -(10**9) - 1}}),
            "data.delta: must be >= -1000000000",
        ),
        (
            _text({**ENVELOPE, "type": "stamps.adjust", "data": {"delta": 10**9}}),
            "data.delta: must be <= 10000",
        ),
        (
            _text(
                {
                    **ENVELOPE,
                    "type": "points.adjust",
                    "data": {"delta": 5, "expires_in_months": 10**20},
                }
            ),
            "expires_in_months: must be <= 1200",
        ),
        (
            _text(
                {
                    **ENVELOPE,
                    "type": "tier.manage",
                    "data": {
                        "action": "upgrade",
                        "strategy": "specific",
                        "tier": "Gold",
                        "expiry": {"kind": "duration", "days": 10**12},
                    },
                }
            ),
            "expiry.days: must be <= 36600",
        ),
        (
            _text(
                {
                    **ENVELOPE,
                    "type": "tier.manage",
                    "data": {
                        "action": "upgrade",
                        "strategy": "specific",
                        "tier": "Gold",
                        "expiry": {"kind": "fixed_date", "date": "9999-12-31"},
                    },
                }
            ),
            "expiry.date: must be from",
        ),
        (
            _text({**ENVELOPE, "type": "tier.expire", "data": {"due_at": "9999-12-31T23:00Z"}}),
            "due_at: must be from",
        ),
    ],
    ids=[
        "deep list",
        "deep object",
        "5000-digit integer",
        "huge exponent in an extended field",
        "offset past year 9999",
        "offset before year 1",
        "before 2000",
        "from 2200",
        "lone surrogate escape",
        "money of 401 digits",
        "money of a trillion",
        "ten million units",
        "delta below -10^9",
        "a billion stamps",
        "points expiring in 10^20 months",
        "tier expiring in 10^12 days",
        "tier fixed_date in year 9999",
        "time event in year 9999",
    ],
)
def test_extreme_input_is_refused_with_a_message_error(raw: str, words: str) -> None:
    with pytest.raises(MessageError) as refused:
        parse_message(raw.encode("utf-8", errors="surrogatepass"))
    assert words in refused.value.message


def test_largest_values_inside_the_bounds_are_accepted() -> None:
    paid = parse_message(
        _text(
            {
                **_order(
                    total="999999999999.9999",
                    items=[{"sku": "a", "quantity": 10**6, "unit_price": "999999999999.9999"}],
                    extended_fields={"n": "1e17"},
                ),
                "occurred_at": "2199-12-31T23:59:59.999999Z",
            }
        )
    )
    assert paid.occurred_at.year == 2199
    early = parse_message(_text({**_order(), "occurred_at": "2000-01-01T01:00:00+01:00"}))
    assert early.occurred_at.year == 2000
