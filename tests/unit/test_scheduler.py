"""The leader's periodic run on the in-memory store: time events, parked messages, backlog."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from tests.unit.factories import NOW, T0
from tests.unit.pipeline_kit import TOPICS, Kit
from tests.unit.test_pipeline import envelope, paid, upsert
from topics import names
from workers.scheduler import PARK_GRACE, Scheduler


def scheduler(
    kit: Kit,
    park_timeout: timedelta = timedelta(days=7),
    outbox_grace: timedelta = timedelta(seconds=60),
) -> Scheduler:
    return Scheduler(
        pipeline=kit.pipeline,
        repository=kit.repository,
        publisher=kit.publisher,
        topics=TOPICS,
        clock=lambda: kit.now,
        health=kit.health,
        page=10,
        park_timeout=park_timeout,
        outbox_grace=outbox_grace,
    )


async def test_parked_too_long_is_refused_as_unknown_customer() -> None:
    kit = Kit()
    await kit.handle(kit.record(names.ORDERS, paid("o-1", "5.00", id="e-1", customer="ghost")))
    assert await kit.repository.parked_count() == 1
    run = scheduler(kit, park_timeout=timedelta(days=1))
    kit.now = NOW + timedelta(hours=1)
    assert (await run.run_once()).parked_refused == 0  # still within the timeout
    kit.now = NOW + timedelta(days=2)
    report = await run.run_once()
    assert report.parked_refused == 1
    [letter] = kit.publisher.on(names.DEAD_LETTER)
    assert letter["error_code"] == "unknown_customer"
    assert (letter["topic"], letter["offset"]) == (TOPICS.orders, 0)
    assert json.loads(letter["value"])["id"] == "e-1"
    assert await kit.repository.parked_count() == 0


async def test_parked_message_of_an_existing_customer_is_applied_by_the_sweep() -> None:
    kit = Kit()
    await kit.handle(kit.record(names.CUSTOMERS, upsert()))
    # A park that lost the race with the customer's creation (as after a crash in between).
    order = kit.record(names.ORDERS, paid("o-1", "25.00", id="e-1"))
    await kit.handle(kit.record(names.ORDERS, paid("o-0", "1.00", id="e-0", customer="ghost")))
    parked = await kit.repository.parked_for({"ghost"})
    [ghost] = parked["ghost"]
    await kit.repository.park(
        [replace(ghost, customer_id="c-1", offset=order.offset, key=order.key, value=order.value)]
    )
    kit.now = NOW + PARK_GRACE + timedelta(seconds=1)
    report = await scheduler(kit).run_once()
    assert report.parked_applied == 1
    state = (await kit.repository.get("c-1")).state  # type: ignore[union-attr]
    assert state.points_balance == 25


async def test_due_customers_get_time_events_with_the_same_ids_on_every_run() -> None:
    kit = Kit(now=T0 + timedelta(days=90))
    await kit.handle(kit.record(names.CUSTOMERS, upsert()))
    adjust = envelope("points.adjust", {"delta": 40, "expires_in_months": 1}, id="a-1")
    await kit.handle(kit.record(names.ADJUSTMENTS, adjust))
    run = scheduler(kit)
    await run.run_once()
    await run.run_once()  # late or repeated: the same events again
    events = [e for e in kit.publisher.on(names.ADJUSTMENTS) if e["type"] == "points.expire"]
    assert len(events) == 2
    assert events[0] == events[1]
    assert events[0]["occurred_at"] == events[0]["data"]["due_at"]
    # Applied through the same path as any message; the repeat is a duplicate.
    for event in events:
        await kit.handle(kit.record(names.ADJUSTMENTS, event))
    state = (await kit.repository.get("c-1")).state  # type: ignore[union-attr]
    assert state.points_balance == 0
    assert kit.count("points.expire", "applied") == 1
    assert kit.count("points.expire", "duplicate") == 1
