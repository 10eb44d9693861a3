"""customer.forget through the worker pipeline: the store's part of the erasure."""

from __future__ import annotations

from store.repository import ParkedMessage
from tests.unit.factories import T0
from tests.unit.pipeline_kit import Kit
from tests.unit.test_pipeline import envelope, paid, upsert
from topics import names


def adjust(id: str, note: str) -> dict[str, object]:
    data = {"delta": 5, "internal_note": note, "customer_note": note}
    return envelope("points.adjust", data, id=id)


def forget(id: str = "f-1") -> dict[str, object]:
    return envelope("customer.forget", {"reason": "asked by Ana"}, id=id)


async def test_forget_erases_notes_lookup_and_parked_and_keeps_balances() -> None:
    kit = Kit()
    await kit.handle(kit.record(names.CUSTOMERS, upsert()))
    await kit.handle(kit.record(names.ADJUSTMENTS, adjust("a-1", "Ana called")))
    # A leftover parked message holding the raw profile (e.g. from before a crash).
    await kit.repository.park(
        [
            ParkedMessage(
                customer_id="c-1",
                topic="loyalty.orders",
                partition=0,
                offset=99,
                key=b"c-1",
                value=b'{"email": "c-1@example.com"}',
                parked_at=T0,
            )
        ]
    )
    # An order, another note and the forget in one batch: the batch's own notes are blanked too.
    await kit.handle(
        kit.record(names.ADJUSTMENTS, adjust("a-2", "Ana again")),
        kit.record(names.ORDERS, paid("o-1", "100.00", id="e-1")),
        kit.record(names.CUSTOMERS, forget()),
    )

    stored = await kit.repository.get("c-1")
    assert stored is not None
    state = stored.state
    assert (state.status, state.email, state.first_name) == ("forgotten", "", None)
    assert state.points_balance == 110
    assert await kit.repository.customer_id_by_email("c-1@example.com") is None
    assert await kit.repository.parked_count() == 0
    entries = (await kit.repository.activity("c-1")).entries
    assert {e.kind for e in entries} >= {"points_adjusted", "customer_forgotten"}
    for entry in entries:
        assert "Ana" not in entry.model_dump_json(), entry
    assert kit.count("customer.forget", "applied") == 1

    await kit.handle(kit.record(names.CUSTOMERS, forget("f-2")))  # forgetting again: no change
    await kit.handle(kit.record(names.ORDERS, paid("o-2", "50.00", id="e-2")))
    await kit.handle(kit.record(names.CUSTOMERS, upsert(id="up-again")))
    after = await kit.repository.get("c-1")
    assert after is not None
    assert (after.state.points_balance, after.state.email) == (110, "")
    assert kit.count("order.paid", "refused") == 1
    refusals = [e for e in (await kit.repository.activity("c-1")).entries if e.kind == "rejected"]
    assert {e.details["code"] for e in refusals} == {"customer_forgotten"}
    assert len(refusals) == 2
