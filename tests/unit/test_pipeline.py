"""The worker pipeline on the in-memory store: batches, redelivery, parking, bad input, fan-out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from pymongo.errors import AutoReconnect, BulkWriteError

from store.repository import CustomerWrite, SaveResult
from tests.unit.factories import T0
from tests.unit.pipeline_kit import TOPICS, Kit
from topics import names
from workers.groups import member_command_id


def envelope(kind: str, data: dict[str, Any], *, id: str, customer: str = "c-1") -> dict[str, Any]:
    return {
        "id": id,
        "type": kind,
        "customer_id": customer,
        "occurred_at": T0.isoformat(),
        "data": data,
    }


def upsert(customer: str = "c-1", id: str | None = None, **data: Any) -> dict[str, Any]:
    body = {"email": f"{customer}@example.com", "first_name": "Ana", **data}
    return envelope("customer.upserted", body, id=id or f"up-{customer}", customer=customer)


def paid(order_id: str, total: str, *, id: str, customer: str = "c-1") -> dict[str, Any]:
    data = {"order_id": order_id, "total": total, "currency": "EUR", "items": []}
    return envelope("order.paid", data, id=id, customer=customer)


async def customer(kit: Kit, customer_id: str = "c-1") -> Any:
    stored = await kit.repository.get(customer_id)
    assert stored is not None
    return stored.state


async def test_order_crossing_a_threshold_saves_state_and_publishes_outputs_once() -> None:
    kit = Kit()
    await kit.handle(kit.record(names.CUSTOMERS, upsert()))
    await kit.handle(kit.record(names.ORDERS, paid("o-1", "600.00", id="e-1")))
    state = await customer(kit)
    assert state.tier == "Silver"
    assert state.points_balance == 600
    changes = kit.publisher.on(names.TIER_CHANGES)
    assert [c["data"]["to_tier"] for c in changes] == ["Bronze", "Silver"]  # joined, then up
    grants = kit.publisher.on(names.REWARDS)
    assert [g["data"]["reward_id"] for g in grants] == ["welcome-silver"]
    # Published, then marked sent: nothing is left in the outbox.
    assert await kit.repository.pending_outbox() == []
    assert kit.count("order.paid", "applied") == 1


async def test_redelivered_record_and_resent_order_are_applied_once() -> None:
    kit = Kit()
    await kit.handle(kit.record(names.CUSTOMERS, upsert()))
    first = kit.record(names.ORDERS, paid("o-1", "100.00", id="e-1"))
    await kit.handle(first)
    await kit.handle(first)  # redelivery after a crash: same offset
    await kit.handle(kit.record(names.ORDERS, paid("o-1", "100.00", id="e-1")))  # same id again
    await kit.handle(
        kit.record(names.ORDERS, paid("o-1", "100.00", id="e-2"))
    )  # new id, same order
    assert (await customer(kit)).points_balance == 100
    assert kit.count("order.paid", "skipped") == 1
    assert kit.count("order.paid", "duplicate") == 2


async def test_order_before_its_customer_is_parked_then_applied_on_creation() -> None:
    kit = Kit()
    await kit.handle(kit.record(names.ORDERS, paid("o-1", "50.00", id="e-1")))
    assert await kit.repository.get("c-1") is None
    assert await kit.repository.parked_count() == 1
    await kit.handle(kit.record(names.CUSTOMERS, upsert()))
    state = await customer(kit)
    assert state.points_balance == 50
    assert await kit.repository.parked_count() == 0
    assert kit.count("order.paid", "parked") == 1
    assert kit.count("order.paid", "applied") == 1


async def test_bad_records_are_dead_lettered_and_the_batch_goes_on() -> None:
    kit = Kit()
    await kit.handle(kit.record(names.CUSTOMERS, upsert()))
    bad_json = kit.record(names.ORDERS, b'{"id": "x", "type": ')
    schema = kit.record(names.ORDERS, paid("o-1", "-5", id="e-bad"))
    unknown = kit.record(names.ORDERS, {**paid("o-2", "5.00", id="e-u"), "type": "order.shipped"})
    binary = kit.record(names.ORDERS, b"\xff\xfe")
    good = kit.record(names.ORDERS, paid("o-3", "70.00", id="e-3"))
    await kit.handle(bad_json, schema, unknown, binary, good)
    letters = kit.publisher.on(names.DEAD_LETTER)
    assert [(d["offset"], d["error_code"]) for d in letters] == [
        (0, "invalid_json"),
        (1, "invalid_message"),
        (2, "unknown_type"),
        (3, "invalid_encoding"),
    ]
    assert all(d["topic"] == TOPICS.orders for d in letters)
    assert letters[3]["value_encoding"] == "base64"
    assert (await customer(kit)).points_balance == 70


async def test_refusal_without_customer_is_dead_lettered_with_its_code() -> None:
    kit = Kit()
    await kit.handle(kit.record(names.CUSTOMERS, upsert("c-1")))
    await kit.handle(kit.record(names.CUSTOMERS, upsert("c-2", email="C-1@example.com"), key="c-2"))
    letters = kit.publisher.on(names.DEAD_LETTER)
    assert [d["error_code"] for d in letters] == ["email_taken"]
    assert await kit.repository.get("c-2") is None


async def test_removed_customer_refusal_lands_on_the_activity() -> None:
    kit = Kit()
    await kit.handle(kit.record(names.CUSTOMERS, upsert()))
    removed = envelope("customer.removed", {"reason": "asked"}, id="rm-1")
    await kit.handle(kit.record(names.CUSTOMERS, removed))
    await kit.handle(kit.record(names.ORDERS, paid("o-1", "10.00", id="e-1")))
    page = await kit.repository.activity("c-1")
    refused = [e for e in page.entries if e.kind == "rejected"]
    assert [e.details["code"] for e in refused] == ["customer_removed"]
    assert kit.count("order.paid", "refused") == 1


async def test_group_command_fans_out_one_command_per_member_and_replays_the_same_ids() -> None:
    kit = Kit()
    for cid in ("c-1", "c-2"):
        await kit.handle(kit.record(names.CUSTOMERS, upsert(cid, groups=["staff"]), key=cid))
    await kit.handle(kit.record(names.CUSTOMERS, upsert("c-3"), key="c-3"))
    group = envelope(
        "tier.manage",
        {"action": "upgrade", "strategy": "specific", "tier": "Gold", "group_id": "staff"},
        id="g-1",
        customer="group:staff",
    )
    record = kit.record(names.TIER_COMMANDS, group, key="group:staff")
    await kit.handle(record)
    await kit.handle(record)  # redelivered: the same commands, with the same ids
    copies = kit.publisher.on(names.TIER_COMMANDS)
    ids = [c["id"] for c in copies]
    assert ids == [member_command_id("g-1", "c-1"), member_command_id("g-1", "c-2")] * 2
    assert {c["customer_id"] for c in copies} == {"c-1", "c-2"}
    assert all(c["data"]["group_id"] is None for c in copies)


class ConflictOnce:
    """Wraps a repository: the first save of a customer reports a version conflict."""

    def __init__(self, kit: Kit, victim: str) -> None:
        self.inner, self.victim, self.tripped = kit.repository, victim, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def save_batch(self, writes: list[CustomerWrite]) -> SaveResult:
        if not self.tripped and any(w.customer_id == self.victim for w in writes):
            self.tripped = True
            # Another worker got there first: bump the stored version under our feet.
            others = [w for w in writes if w.customer_id != self.victim]
            result = await self.inner.save_batch(others)
            self.inner.customers[self.victim]["version"] += 1
            return SaveResult(saved=result.saved, conflicts=frozenset({self.victim}))
        return await self.inner.save_batch(writes)


async def test_version_conflict_reloads_and_redoes_without_double_applying() -> None:
    kit = Kit()
    for cid in ("c-1", "c-2"):
        await kit.handle(kit.record(names.CUSTOMERS, upsert(cid), key=cid))
    kit.pipeline.repository = ConflictOnce(kit, "c-1")  # type: ignore[assignment]
    await kit.handle(
        kit.record(names.ORDERS, paid("o-1", "30.00", id="e-1", customer="c-1"), key="c-1"),
        kit.record(names.ORDERS, paid("o-2", "40.00", id="e-2", customer="c-2"), key="c-2"),
    )
    assert (await customer(kit, "c-1")).points_balance == 30
    assert (await customer(kit, "c-2")).points_balance == 40
    assert kit.count("order.paid", "applied") == 2


async def test_kafka_outage_is_retried_until_published() -> None:
    kit = Kit()
    kit.publisher.fail = 2
    await kit.handle(kit.record(names.CUSTOMERS, upsert()))
    await kit.handle(kit.record(names.ORDERS, paid("o-1", "600.00", id="e-1")))
    assert [c["data"]["to_tier"] for c in kit.publisher.on(names.TIER_CHANGES)][-1] == "Silver"
    assert kit.health.ready


async def test_a_record_that_breaks_the_worker_is_set_aside_and_the_rest_applied() -> None:
    kit = Kit()
    await kit.handle(kit.record(names.CUSTOMERS, upsert()))
    bind = kit.pipeline.decider

    def breaking(now: Any) -> Any:
        decide = bind(now)

        def run(state: Any, message: Any) -> Any:
            if message.id == "e-boom":
                raise RuntimeError("boom")
            return decide(state, message)

        return run

    kit.pipeline.decider = breaking
    await kit.handle(
        kit.record(names.ORDERS, paid("o-1", "10.00", id="e-1")),
        kit.record(names.ORDERS, paid("o-2", "20.00", id="e-boom")),
        kit.record(names.ORDERS, paid("o-3", "30.00", id="e-3")),
    )
    assert (await customer(kit)).points_balance == 40
    [letter] = kit.publisher.on(names.DEAD_LETTER)
    assert (letter["offset"], letter["error_code"]) == (1, "processing_failed")
    assert "boom" in letter["error_message"]


async def test_outputs_left_unsent_by_an_interrupted_run_go_out_with_the_next_batch() -> None:
    kit = Kit()
    await kit.handle(kit.record(names.CUSTOMERS, upsert()))
    kit.publisher.fail = 10**6  # Kafka is down while the next batch is saved ...
    order = kit.record(names.ORDERS, paid("o-1", "600.00", id="e-1"))
    task = asyncio.create_task(kit.handle(order))
    while not await kit.repository.pending_outbox():
        await asyncio.sleep(0.01)
    task.cancel()  # ... and the process stops before it could publish
    with contextlib.suppress(asyncio.CancelledError):
        await task
    kit.publisher.fail = 0
    await kit.handle(kit.record(names.ORDERS, paid("o-2", "1.00", id="e-2")))
    assert "Silver" in [c["data"]["to_tier"] for c in kit.publisher.on(names.TIER_CHANGES)]
    assert await kit.repository.pending_outbox() == []


class CursorBreaks:
    """Wraps a repository: the first group cursors fail after one member (a store outage)."""

    def __init__(self, kit: Kit, times: int) -> None:
        self.inner, self.left = kit.repository, times

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def group_members(self, group_id: str) -> Any:
        async for member in self.inner.group_members(group_id):
            yield member
            if self.left:
                self.left -= 1
                raise ConnectionError("store went away mid-cursor")


async def test_a_store_outage_mid_fan_out_starts_the_fan_out_over() -> None:
    kit = Kit()
    for cid in ("c-1", "c-2"):
        await kit.handle(kit.record(names.CUSTOMERS, upsert(cid, groups=["staff"]), key=cid))
    kit.pipeline.repository = CursorBreaks(kit, times=3)  # type: ignore[assignment]
    group = envelope(
        "tier.manage",
        {"action": "upgrade", "strategy": "specific", "tier": "Gold", "group_id": "staff"},
        id="g-1",
        customer="group:staff",
    )
    await kit.handle(kit.record(names.TIER_COMMANDS, group, key="group:staff"))
    ids = [c["id"] for c in kit.publisher.on(names.TIER_COMMANDS)]
    assert set(ids) == {member_command_id("g-1", "c-1"), member_command_id("g-1", "c-2")}
    assert kit.publisher.on(names.DEAD_LETTER) == []


class SaveRefuses:
    """Wraps a repository: a save that holds ``customer_id`` is refused as a too-large document
    (what MongoDB answers for a document past 16 MB), ``outages`` saves fail as the network."""

    def __init__(self, kit: Kit, customer_id: str, outages: int = 0) -> None:
        self.inner, self.customer_id, self.outages = kit.repository, customer_id, outages
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def save_batch(self, writes: Sequence[CustomerWrite]) -> SaveResult:
        if self.outages:
            self.outages -= 1
            raise AutoReconnect("connection closed")
        if any(w.customer_id == self.customer_id for w in writes):
            self.refused += 1
            error = {"index": 0, "code": 10334, "errmsg": "BSONObj size: 17000000 is invalid"}
            raise BulkWriteError({"writeErrors": [error], "nMatched": 0})
        return await self.inner.save_batch(writes)


async def test_a_write_the_store_refuses_sets_its_record_aside_instead_of_stalling() -> None:
    kit = Kit()
    for cid in ("c-1", "c-2"):
        await kit.handle(kit.record(names.CUSTOMERS, upsert(cid, id=f"u-{cid}")))
    refusing = SaveRefuses(kit, "c-2", outages=2)
    kit.pipeline.repository = refusing  # type: ignore[assignment]
    await kit.handle(
        kit.record(names.ORDERS, paid("o-1", "10.00", id="e-1")),
        kit.record(names.ORDERS, paid("o-2", "20.00", id="e-2", customer="c-2")),
        kit.record(names.ORDERS, paid("o-3", "30.00", id="e-3")),
    )
    # The outage was retried; the refusal was not: the batch, then the record alone, once each.
    assert refusing.refused == 2
    assert (await customer(kit)).points_balance == 40
    assert (await customer(kit, "c-2")).points_balance == 0
    [letter] = kit.publisher.on(names.DEAD_LETTER)
    assert (letter["offset"], letter["error_code"]) == (1, "processing_failed")
    assert "BulkWriteError" in letter["error_message"]
    assert kit.health.ready  # the store answered: a refused write is no outage
