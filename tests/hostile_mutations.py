"""Hypothesis strategies of malformed messages: a valid message broken in exactly one way.

Each knows the dead-letter code the decoder must give it (``invalid_json``,
``invalid_encoding``, ``unknown_type`` or ``invalid_message``); see tests/hostile_messages.py
for the valid ones and the ``Hostile`` record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from hypothesis import strategies as st

from tests.hostile_messages import (
    HOSTILE_KEYS,
    TOPIC_OF,
    Hostile,
    Population,
    data_for,
    encode,
    envelope,
    long_text,
)
from topics.codec import INPUT_TYPES

# --- malformed messages -----------------------------------------------------------------------

_NOT_NULL_JUNK = st.one_of(
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["$ne", "$gt", "a.b"]), st.integers(), min_size=1, max_size=2),
)
_FLOATS = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)


@cache
def _bad(kind: str) -> st.SearchStrategy[Any]:
    """Values a field of this kind refuses (never null: optional fields accept null)."""
    text = st.one_of(st.integers(), _FLOATS, _NOT_NULL_JUNK)
    if kind == "money":
        return st.one_of(
            _FLOATS,
            st.integers(0, 10**6),
            st.sampled_from(["12,50", "1e3", " 1.00", "1.00 ", "abc", "", "-1", "1.23456", "€5"]),
            st.just("1" + "0" * 12),
            long_text(13, 150_000).map(lambda s: "9" * len(s)),
            _NOT_NULL_JUNK,
        )
    if kind in {"points_delta", "stamps_delta", "months", "pos_int", "quantity"}:
        limit = {
            "points_delta": 10**9,
            "stamps_delta": 10_000,
            "months": 1200,
            "pos_int": 10**9,
            "quantity": 10**6,
        }[kind]
        out_of_range = st.integers(limit + 1, 10**30) | st.integers(-(10**30), -limit - 1)
        if kind in {"months", "pos_int", "quantity"}:
            out_of_range = out_of_range | st.integers(-5, 0)
        else:
            out_of_range = out_of_range | st.just(0)
        return st.one_of(
            out_of_range,
            _FLOATS.filter(lambda f: f != int(f)) | st.just(5.0),
            st.sampled_from(["5", "1e3", "", "ten"]),
            _NOT_NULL_JUNK,
        )
    if kind in {"id", "name"}:
        blank = st.sampled_from(["", "   ", "\t"]) if kind == "name" else st.just("")
        return st.one_of(text, blank, long_text(201, 150_000))
    if kind == "note":
        return st.one_of(text, long_text(2001, 150_000))
    if kind == "optstr":
        return text
    if kind == "email":
        return st.one_of(
            text,
            st.sampled_from(["", "ana", "ana@", "@x", "a b@x.io", "a@b@c", "$ne"]),
            long_text(321, 100_000).map(lambda s: s + "@x.io"),
        )
    if kind == "bool":
        return st.one_of(st.sampled_from(["true", "yes", 1, 0, "", "false"]), st.just([]))
    if kind == "currency":
        return st.one_of(st.sampled_from(["eur", "EURO", "E1R", "", "€", "US D"]), text)
    if kind == "extended":
        nested = st.dictionaries(
            st.sampled_from(HOSTILE_KEYS),
            st.one_of(
                st.none(),
                st.just({"$ne": 1}),
                st.lists(st.integers(), max_size=2),
                st.just("1e30").map(float),
            ),
            min_size=1,
            max_size=3,
        )
        return st.one_of(nested, st.sampled_from(["x", 5, [1], True]))
    if kind == "codes":
        return st.one_of(
            st.lists(st.just("CODE"), min_size=21, max_size=40),
            st.just([""]),
            st.just(["C" * 65]),
            st.just([5]),
            st.just("CODE"),
        )
    if kind == "groups":
        return st.one_of(st.just("staff"), st.just([""]), st.just([5]), st.just([{"$ne": 1}]))
    if kind == "enum":
        return st.one_of(st.sampled_from(["promote", "", "UPGRADE", "$set"]), st.integers())
    if kind == "expiry":
        return st.one_of(
            st.just({"kind": "forever"}),
            st.just({"kind": "fixed_date"}),
            st.just({"kind": "fixed_date", "date": "2025-13-01"}),
            st.just({"kind": "fixed_date", "date": "2250-01-01"}),
            st.just({"kind": "duration"}),
            st.just({"kind": "duration", "days": "5"}),
            st.just({"kind": "duration_from_field", "field": "x", "unit": "weeks"}),
            st.just("2025-12-31"),
            st.just({"$gt": 1}),
        )
    if kind == "items":
        item = {"sku": "beans", "quantity": 1, "unit_price": "1.00"}
        return st.one_of(
            st.sampled_from(["beans", 5, {"sku": "beans"}]),
            st.just([item, "beans"]),
            st.sampled_from(["sku", "quantity", "unit_price"]).map(
                lambda k: [{f: v for f, v in item.items() if f != k}]
            ),
            st.tuples(st.sampled_from(["quantity", "unit_price"]), _FLOATS).map(
                lambda kv: [{**item, kv[0]: kv[1] if kv[1] != 1 else 1.5}]
            ),
        )
    if kind == "refund_items":
        return st.one_of(
            st.just([]),
            st.just([{"sku": "beans"}]),
            st.just([{"sku": "beans", "quantity": 0}]),
            st.just("beans"),
        )
    raise AssertionError(kind)


FIELDS: dict[str, dict[str, str]] = {
    "customer.upserted": {
        "email": "email",
        "first_name": "optstr",
        "last_name": "optstr",
        "accepts_email": "bool",
        "groups": "groups",
    },
    "customer.removed": {"reason": "note"},
    "customer.forget": {"reason": "note"},
    "order.paid": {
        "order_id": "id",
        "total": "money",
        "currency": "currency",
        "items": "items",
        "shipping": "money",
        "tax": "money",
        "extended_fields": "extended",
        "reward_codes": "codes",
    },
    "order.refunded": {
        "order_id": "id",
        "refund_id": "id",
        "amount": "money",
        "items": "refund_items",
    },
    "order.cancelled": {"order_id": "id"},
    "points.adjust": {
        "delta": "points_delta",
        "internal_note": "note",
        "customer_note": "note",
        "expires_in_months": "months",
    },
    "stamps.adjust": {"delta": "stamps_delta", "internal_note": "note", "customer_note": "note"},
    "reward.redeem": {"reward_id": "name", "points": "pos_int", "internal_note": "note"},
    "reward.revoke": {"grant_id": "id", "internal_note": "note"},
    "tier.change": {
        "tier": "name",
        "notify": "bool",
        "entry_rewards": "bool",
        "internal_note": "note",
    },
    "tier.manage": {
        "action": "enum",
        "strategy": "enum",
        "tier": "name",
        "expiry": "expiry",
        "notify": "bool",
        "entry_rewards": "bool",
        "extended_fields": "extended",
        "internal_note": "note",
    },
}
"""The payload fields of each type, by the kind of value they take."""
REQUIRED: dict[str, tuple[str, ...]] = {
    "customer.upserted": ("email",),
    "customer.removed": (),
    "customer.forget": (),
    "order.paid": ("order_id", "total", "currency"),
    "order.refunded": ("order_id", "refund_id"),
    "order.cancelled": ("order_id",),
    "points.adjust": ("delta",),
    "stamps.adjust": ("delta",),
    "reward.redeem": ("reward_id",),
    "reward.revoke": ("grant_id",),
    "tier.change": ("tier",),
    "tier.manage": ("action", "strategy"),
}
ENVELOPE_BAD: dict[str, st.SearchStrategy[Any]] = {
    "id": _bad("id"),
    "customer_id": _bad("id"),
    "occurred_at": st.one_of(
        st.sampled_from(
            [
                "2025-03-01T12:00:00",
                "2025-03-01",
                "yesterday",
                "",
                "1999-12-31T23:59:59Z",
                "2200-01-01T00:00:00Z",
                "9999-12-31T23:59:59-23:59",
                "0001-01-01T00:00:00+23:59",
                "2025-02-30T00:00:00Z",
            ]
        ),
        st.integers(0, 2**40),
        _FLOATS,
        _NOT_NULL_JUNK,
    ),
    "source": st.one_of(st.integers(), _NOT_NULL_JUNK),
    "actor": st.one_of(st.integers(), _NOT_NULL_JUNK),
    "batch": st.one_of(
        st.sampled_from(["b-1", 5, []]),
        st.just({"row": 2}),
        st.just({"id": "b", "row": -1}),
        st.just({"id": "b", "row": "2"}),
        st.just({"id": "b", "row": 2, "suppress_notifications": "no"}),
        st.just({"id": "", "row": 2}),
    ),
    "data": st.one_of(st.sampled_from(["x", 5, [], True, None]), st.lists(st.integers())),
}
UNKNOWN_TYPES = st.one_of(
    st.sampled_from(
        [
            "order.paid.v2",
            "ORDER.PAID",
            "",
            " order.paid",
            "points.adjusted",
            "tier.changed",
            "reward.granted",
            "notification.requested",
            "$where",
            "order.paid\x00",
        ]
    ),
    st.integers(),
    st.none(),
    _NOT_NULL_JUNK,
    st.text(max_size=30).filter(lambda t: t not in INPUT_TYPES),
)


@dataclass(frozen=True)
class _Base:
    kind: str
    customer_id: str
    value: dict[str, Any]


def _base(people: Population, mid: str, draw: st.DrawFn) -> _Base:
    kind = draw(st.sampled_from(sorted(TOPIC_OF)))
    cid = draw(st.sampled_from(people.existing))
    data = data_for(kind, draw, mid)
    return _Base(kind, cid, envelope(kind, cid, mid, people.recent(draw), data))


@st.composite
def malformed(draw: st.DrawFn, people: Population, mid: str) -> Hostile:
    """A message of one of the twelve types broken in exactly one way, with its expected code."""
    base = _base(people, mid, draw)
    value = base.value
    how = draw(
        st.sampled_from(["payload", "payload", "payload", "missing", "envelope", "type", "bytes"])
    )
    code = "invalid_message"
    raw: bytes | None
    if how == "payload":
        field = draw(st.sampled_from(sorted(FIELDS[base.kind])))
        bad = draw(_bad(FIELDS[base.kind][field]))
        value["data"] = {**value["data"], field: bad}
        label = f"{base.kind}.{field}"
        raw = encode(value)
    elif how == "missing":
        # customer.removed and customer.forget may leave out data; the others need it.
        data = ("data",) if REQUIRED[base.kind] else ()
        required = ("id", "customer_id", "occurred_at", *data, *REQUIRED_DATA(base.kind))
        field = draw(st.sampled_from(required))
        if field.startswith("data."):
            value["data"] = {k: v for k, v in value["data"].items() if k != field[5:]}
        else:
            del value[field]
        label = f"missing {field}"
        raw = encode(value)
    elif how == "envelope":
        field = draw(st.sampled_from(sorted(ENVELOPE_BAD)))
        bad = draw(ENVELOPE_BAD[field])
        value[field] = bad
        label = f"envelope {field}"
        raw = encode(value)
    elif how == "type":
        if draw(st.booleans()):
            value["type"] = draw(UNKNOWN_TYPES)
        else:
            del value["type"]
        code, label, raw = "unknown_type", "type", encode(value)
    else:
        code, label, raw = draw(broken_bytes(value))
    return Hostile(TOPIC_OF[base.kind], base.customer_id, raw, "malformed", code, None, None, label)


def REQUIRED_DATA(kind: str) -> tuple[str, ...]:  # noqa: N802 - reads as the table it is
    """The payload fields of a type that are required, as ``data.<field>``."""
    return tuple(f"data.{name}" for name in REQUIRED[kind])


MARK_VALUE = "@@hostile-mark@@"
"""A placeholder value replaced in the encoded text by what JSON encoding would not write."""
MARK = json.dumps(MARK_VALUE)


@st.composite
def broken_bytes(draw: st.DrawFn, value: dict[str, Any]) -> tuple[str, str, bytes | None]:
    """Break a valid message at the byte level: (expected code, label, raw value)."""
    good = encode(value)
    how = draw(
        st.sampled_from(
            [
                "not utf-8",
                "surrogate",
                "truncated",
                "not json",
                "not an object",
                "deep",
                "big int",
                "constant",
                "raw control character",
                "tombstone",
                "empty",
            ]
        )
    )
    if how == "not utf-8":
        bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xe2\x82", b"\x80"]))
        text = good.decode()
        cut = draw(st.integers(0, len(text)))  # between two characters: no byte completes it
        return "invalid_encoding", how, text[:cut].encode() + bad + text[cut:].encode()
    if how == "surrogate":
        value["data"] = {**value["data"], "note": "\ud800"}
        return "invalid_encoding", how, json.dumps(value).encode("ascii")
    if how == "truncated":
        text = good.decode()
        return "invalid_json", how, text[: draw(st.integers(1, len(text) - 1))].encode()
    if how == "not json":
        junk = draw(st.text(max_size=200) | long_text(1, 450_000))
        return "invalid_json", how, ("<" + junk).encode("utf-8", "surrogatepass")
    if how == "not an object":
        top = draw(st.sampled_from(["[]", "null", "5", '"order.paid"', "true", "[{}]", "1.5"]))
        return "invalid_json", how, top.encode()
    if how == "deep":
        depth = draw(st.integers(40, 5000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        nested = opener * depth + "1" + closer * depth
        value["data"] = {**value["data"], "extended_fields": MARK_VALUE}
        text = encode(value).decode().replace(MARK, nested, 1)
        return "invalid_json", how, text.encode()
    if how == "big int":
        digits = draw(st.integers(41, 5000))
        value["data"] = {**value["data"], "delta": MARK_VALUE}
        return "invalid_json", how, encode(value).decode().replace(MARK, "9" * digits, 1).encode()
    if how == "constant":
        value["data"] = {**value["data"], "total": MARK_VALUE}
        constant = draw(st.sampled_from(["NaN", "Infinity", "-Infinity"]))
        return "invalid_json", how, encode(value).decode().replace(MARK, constant, 1).encode()
    if how == "raw control character":
        char = draw(st.sampled_from(["\x00", "\x01", "\n", "\x1f"]))
        size = draw(st.integers(1, 3) | st.integers(10_000, 300_000))
        value["data"] = {**value["data"], "internal_note": MARK_VALUE}
        text = encode(value).decode().replace(MARK, '"' + char * size + '"', 1)
        return "invalid_json", how, text.encode()
    if how == "tombstone":
        return "invalid_json", how, None
    return "invalid_json", how, b""
