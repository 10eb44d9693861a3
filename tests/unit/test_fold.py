"""The worker's pure fold: offsets, parking, email uniqueness, outbox entries; no I/O at all."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from models.decide import applied_keys, decide
from store.repository import ParkedMessage, StoredCustomer
from tests.unit.factories import CODE_KEY, NOW, PROGRAM, T0
from topics import names
from topics.names import Topics
from workers.fold import Fold, decode, fold

TOPICS = Topics("f.")


def raw(kind: str, data: dict[str, Any], *, id: str, customer: str = "c-1") -> bytes:
    body = {"id": id, "type": kind, "customer_id": customer, "occurred_at": T0.isoformat()}
    return json.dumps({**body, "data": data}).encode()


def record(topic: str, offset: int, value: bytes, parked: ParkedMessage | None = None) -> Any:
    try:  # keyed by its customer, as the contract asks (bad JSON: the usual test customer)
        key = json.loads(value)["customer_id"].encode()
    except (ValueError, KeyError, TypeError, AttributeError):
        key = b"c-1"
    return decode(TOPICS.name(topic), 0, offset, key, value, topics=TOPICS, parked=parked)


def run(records: list[Any], loaded: dict[str, StoredCustomer] | None = None, **kw: Any) -> Fold:
    return fold(
        records,
        loaded or {},
        decide=partial(decide, program=PROGRAM, now=NOW, code_key=CODE_KEY),
        applied_keys=applied_keys,
        email_owners=kw.get("owners", {}),
        now=NOW,
    )


UPSERT = raw("customer.upserted", {"email": "ana@example.com"}, id="u-1")
ORDER = raw("order.paid", {"order_id": "o-1", "total": "600.00", "currency": "EUR"}, id="e-1")


def stored_after(result: Fold) -> StoredCustomer:
    [write] = result.writes
    return StoredCustomer(state=write.state, version=1, offsets=dict(write.offsets))


def test_creation_and_order_make_one_write_with_outbox_offsets_and_ids() -> None:
    created = run([record(names.CUSTOMERS, 0, UPSERT)])
    assert created.created == {"c-1"}
    result = run([record(names.ORDERS, 7, ORDER)], {"c-1": stored_after(created)})
    [write] = result.writes
    assert write.offsets == {(names.ORDERS, 0): 7}
    assert write.applied_ids == ("e-1",)
    topics = {entry.topic for entry in write.outbox}
    assert topics == {names.TIER_CHANGES, names.REWARDS, names.NOTIFICATIONS}
    assert all(json.loads(e.value)["id"] == e.output_id for e in write.outbox)
    assert [o.kind for o in result.outcomes] == ["applied"]


def test_offsets_at_or_below_the_stored_one_are_skipped_but_parked_records_are_not() -> None:
    customer = stored_after(run([record(names.CUSTOMERS, 0, UPSERT)]))
    customer = StoredCustomer(customer.state, 1, {(names.ORDERS, 0): 7})
    skipped = run([record(names.ORDERS, 7, ORDER)], {"c-1": customer})
    assert [o.kind for o in skipped.outcomes] == ["skipped"]
    assert skipped.writes == []
    parked = ParkedMessage("c-1", TOPICS.orders, 0, 3, b"c-1", ORDER, NOW)
    drained = run([record(names.ORDERS, 3, ORDER, parked)], {"c-1": customer})
    assert [o.kind for o in drained.outcomes] == ["applied"]
    assert drained.drained == [parked]
    assert drained.writes[0].offsets == {(names.ORDERS, 0): 3}  # the store keeps the maximum


def test_unknown_customer_is_parked_once_in_arrival_order() -> None:
    second = raw("order.paid", {"order_id": "o-2", "total": "1", "currency": "EUR"}, id="e-2")
    result = run([record(names.ORDERS, 4, ORDER), record(names.ORDERS, 5, second)])
    assert [(p.offset, p.customer_id) for p in result.park] == [(4, "c-1"), (5, "c-1")]
    assert result.writes == []
    # Still no customer when the parked message is tried again: it waits, nothing is re-parked.
    again = run([record(names.ORDERS, 4, ORDER, result.park[0])])
    assert [o.kind for o in again.outcomes] == ["waiting"]
    assert again.park == []


def test_an_email_held_by_another_customer_is_refused() -> None:
    other = raw("customer.upserted", {"email": " ANA@example.com"}, id="u-2", customer="c-2")
    result = run([record(names.CUSTOMERS, 0, UPSERT), record(names.CUSTOMERS, 1, other)])
    assert [o.kind for o in result.outcomes] == ["applied", "dead_letter"]
    [letter] = result.dead_letters
    assert (letter.error_code, letter.offset) == ("email_taken", 1)
    # An existing customer asking for a held email: refused on its activity, state untouched.
    own = raw("customer.upserted", {"email": "bo@example.com"}, id="u-3", customer="c-2")
    existing = {"c-2": stored_after(run([record(names.CUSTOMERS, 0, own)]))}
    refused = run([record(names.CUSTOMERS, 2, other)], existing, owners={"ana@example.com": "c-1"})
    assert refused.writes == []
    [entry] = refused.refusals["c-2"]
    assert entry.entry.details["code"] == "email_taken"


def test_undecodable_records_become_dead_letters_with_their_coordinates() -> None:
    result = run([record(names.ORDERS, 9, b"\xff")])
    [letter] = result.dead_letters
    assert (letter.topic, letter.offset, letter.error_code) == (
        TOPICS.orders,
        9,
        "invalid_encoding",
    )
    assert letter.value_encoding == "base64"


def test_a_message_on_another_topic_or_under_another_key_is_dead_lettered() -> None:
    created = run([record(names.CUSTOMERS, 0, UPSERT)])
    loaded = {"c-1": stored_after(created)}
    astray = record(names.ADJUSTMENTS, 3, ORDER)  # an order on the adjustments topic
    miskeyed = decode(TOPICS.orders, 0, 4, b"o-1", ORDER, topics=TOPICS)  # keyed by its order
    unkeyed = decode(TOPICS.orders, 0, 5, None, ORDER, topics=TOPICS)
    result = run([astray, miskeyed, unkeyed], loaded)
    assert [o.kind for o in result.outcomes] == ["dead_letter"] * 3
    assert [(d.topic, d.offset, d.error_code) for d in result.dead_letters] == [
        (TOPICS.adjustments, 3, "wrong_topic"),
        (TOPICS.orders, 4, "key_mismatch"),
        (TOPICS.orders, 5, "key_mismatch"),
    ]
    assert result.writes == []  # nothing applied: the same order sent right is still new
    applied = run([record(names.ORDERS, 6, ORDER)], loaded)
    assert [o.kind for o in applied.outcomes] == ["applied"]
