"""A parked message is applied before anything later for its customer, whichever agent runs."""

from __future__ import annotations

from tests.unit.pipeline_kit import Kit
from tests.unit.test_pipeline import customer, paid, upsert
from topics import names


async def _no_drain(customer_ids: set[str]) -> None:
    """The creating agent has not drained yet (it runs concurrently with the others)."""


async def test_a_later_message_does_not_overtake_a_parked_one() -> None:
    kit = Kit()
    # The order reaches the worker before its customer: parked.
    await kit.handle(kit.record(names.ORDERS, paid("o-1", "600.00", id="e-1")))
    assert await kit.repository.parked_count() == 1
    # The customers agent creates the customer but has not drained the parked order yet...
    kit.pipeline.drain = _no_drain  # type: ignore[method-assign]
    await kit.handle(kit.record(names.CUSTOMERS, upsert()))
    del kit.pipeline.drain
    # ...when the orders agent takes the customer's next order from the same partition.
    await kit.handle(kit.record(names.ORDERS, paid("o-2", "100.00", id="e-2")))
    state = await customer(kit)
    # In order, the second order earns with Silver's points multiplier (out of order: 700).
    assert state.points_balance > 700
    assert await kit.repository.parked_count() == 0
    # Applied in order: the parked order (600) took the customer to Silver, not the later one.
    changes = kit.publisher.on(names.TIER_CHANGES)
    assert [(c["data"]["to_tier"], c["data"]["cause"]["id"]) for c in changes] == [
        ("Bronze", "up-c-1"),
        ("Silver", "e-1"),
    ]
