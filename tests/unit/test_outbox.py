"""One process publishes each outbox entry once; the scheduler leaves young entries alone.

A gated publisher holds a delivery in flight (nothing published yet) while a second delivery, a
scheduler run or another agent's batch comes to the same entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from store import documents as docs
from store.memory import MemoryCustomerRepository
from store.repository import CustomerWrite, OutboxEntry, PendingOutbox, SaveResult
from tests.store_contract import customer
from tests.unit.factories import NOW
from tests.unit.pipeline_kit import TOPICS, Kit, RecordingPublisher
from tests.unit.test_pipeline import envelope, paid, upsert
from tests.unit.test_scheduler import scheduler
from topics import names
from workers.health import Health
from workers.metrics import Metrics
from workers.outbox import Outbox, Outgoing
from workers.scheduler import Scheduler

WAIT = 5.0
"""Seconds a test waits for a condition before it fails (never reached when all is well)."""
OUTPUT_TOPICS = {TOPICS.name(t) for t in (names.TIER_CHANGES, names.REWARDS, names.NOTIFICATIONS)}


class GatedPublisher(RecordingPublisher):
    """Records like ``RecordingPublisher``; while held, every publish waits for ``release``."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.waiting = asyncio.Event()
        self._gate: asyncio.Event | None = None

    def hold(self) -> None:
        """Make the next publish calls wait (``waiting`` is set once one does); count from 0."""
        self._gate = asyncio.Event()
        self.waiting.clear()
        self.calls = 0

    def release(self) -> None:
        """Let the held calls and every later one through."""
        if self._gate is not None:
            self._gate.set()
            self._gate = None

    async def publish(self, messages: Sequence[Outgoing]) -> None:
        self.calls += 1
        gate = self._gate
        if gate is not None:
            self.waiting.set()
            await gate.wait()
        await super().publish(messages)


def _output_ids(sent: Sequence[Outgoing]) -> list[str]:
    """The ids of the outputs (tier changes, grants, notifications) published, in order."""
    return [str(json.loads(m.value)["id"]) for m in sent if m.topic in OUTPUT_TOPICS]


def _duplicates(ids: Sequence[str]) -> dict[str, int]:
    return {i: n for i, n in Counter(ids).items() if n > 1}


def _entry(output_id: str, written_at: datetime | None = None) -> OutboxEntry:
    value = json.dumps({"id": output_id}).encode()
    return OutboxEntry(output_id, names.TIER_CHANGES, "c-1", value, written_at=written_at)


def _outbox(repository: MemoryCustomerRepository, publisher: RecordingPublisher) -> Outbox:
    return Outbox(repository, publisher, TOPICS, Health(), Metrics())


async def _stored(repository: MemoryCustomerRepository, *entries: OutboxEntry) -> None:
    """Create customer c-1 holding these outbox entries."""
    write = CustomerWrite(state=customer("c-1"), loaded=None, outbox=entries)
    assert (await repository.save_batch([write])).saved == {"c-1"}


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait until ``condition`` holds; fail after ``WAIT`` seconds."""
    try:
        async with asyncio.timeout(WAIT):
            while not condition():
                await asyncio.sleep(0.001)
    except TimeoutError:
        raise AssertionError(f"not within {WAIT} s: {what}") from None


async def _let_others_run() -> None:
    """Let every ready task run until it blocks (only in-memory I/O here: a few loop turns)."""
    for _ in range(20):
        await asyncio.sleep(0)


# --- deliveries within one process ------------------------------------------------------------


async def test_concurrent_deliveries_publish_once_and_both_return_after_mark_sent() -> None:
    repository, publisher = MemoryCustomerRepository(), GatedPublisher()
    outbox = _outbox(repository, publisher)
    entries = (_entry("o-1"), _entry("o-2"))
    await _stored(repository, *entries)

    async def deliver_then_look() -> tuple[int, list[PendingOutbox]]:
        count = await outbox.deliver({"c-1": entries})
        return count, await repository.pending_outbox()

    publisher.hold()
    first = asyncio.create_task(deliver_then_look())
    await asyncio.wait_for(publisher.waiting.wait(), WAIT)
    assert outbox.in_flight("c-1", "o-1")
    second = asyncio.create_task(deliver_then_look())
    await _let_others_run()
    assert not second.done()  # it waits for the first call instead of skipping
    publisher.release()
    results = await asyncio.wait_for(asyncio.gather(first, second), WAIT)

    assert [count for count, _ in results] == [2, 0]
    assert publisher.calls == 1
    assert _output_ids(publisher.sent) == ["o-1", "o-2"]
    # Neither returned before the entries were marked sent.
    assert [left for _, left in results] == [[], []]
    assert not outbox.in_flight("c-1", "o-1")
    assert outbox.recently_sent("c-1", "o-1")


async def test_a_waiting_delivery_takes_over_when_the_holder_is_cancelled() -> None:
    repository, publisher = MemoryCustomerRepository(), GatedPublisher()
    outbox = _outbox(repository, publisher)
    entries = (_entry("o-1"),)
    await _stored(repository, *entries)
    publisher.hold()
    holder = asyncio.create_task(outbox.deliver({"c-1": entries}))
    await asyncio.wait_for(publisher.waiting.wait(), WAIT)
    waiter = asyncio.create_task(outbox.deliver({"c-1": entries}))
    await _let_others_run()

    holder.cancel()  # the worker stops while the holder waits for Kafka
    with contextlib.suppress(asyncio.CancelledError):
        await holder
    publisher.release()

    assert await asyncio.wait_for(waiter, WAIT) == 1
    assert _output_ids(publisher.sent) == ["o-1"]
    assert await repository.pending_outbox() == []


async def test_a_cancelled_delivery_leaves_its_entries_for_the_next_start() -> None:
    repository, publisher = MemoryCustomerRepository(), GatedPublisher()
    outbox = _outbox(repository, publisher)
    await _stored(repository, _entry("o-1"))
    publisher.hold()
    task = asyncio.create_task(outbox.deliver({"c-1": (_entry("o-1"),)}))
    await asyncio.wait_for(publisher.waiting.wait(), WAIT)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    publisher.release()

    assert not outbox.in_flight("c-1", "o-1")
    [pending] = await repository.pending_outbox()
    assert [e.output_id for e in pending.entries] == ["o-1"]
    assert await outbox.republish_backlog() == 1  # what the next start does
    assert await repository.pending_outbox() == []


async def test_an_entry_sent_lately_is_not_published_again_but_is_marked_sent() -> None:
    repository, publisher = MemoryCustomerRepository(), RecordingPublisher()
    outbox = _outbox(repository, publisher)
    await _stored(repository, _entry("o-1"))
    assert await outbox.deliver({"c-1": (_entry("o-1"),)}) == 1
    # A stale read (a scheduler page, another batch's load) still has it, and so may the store.
    repository.customers["c-1"]["outbox"] = [docs.encode_outbox(_entry("o-1"))]

    assert await outbox.deliver({"c-1": (_entry("o-1"),)}) == 0

    assert _output_ids(publisher.sent) == ["o-1"]
    assert await repository.pending_outbox() == []


async def test_the_memory_of_sent_entries_is_bounded_first_in_first_out() -> None:
    repository, publisher = MemoryCustomerRepository(), RecordingPublisher()
    outbox = Outbox(repository, publisher, TOPICS, Health(), Metrics(), recently_sent=2)
    for n in range(3):
        await outbox.deliver({"c-1": (_entry(f"o-{n}"),)})

    assert [outbox.recently_sent("c-1", f"o-{n}") for n in range(3)] == [False, True, True]
    assert not outbox.recently_sent("c-2", "o-2")  # per customer: upstream ids may repeat
    await outbox.deliver({"c-1": (_entry("o-0"),)})
    assert _output_ids(publisher.sent) == ["o-0", "o-1", "o-2", "o-0"]  # forgotten: again


# --- batches and the scheduler ----------------------------------------------------------------


def _order(kit: Kit) -> asyncio.Task[None]:
    """Start a batch whose order makes c-1 Silver (a tier change and a grant to publish)."""
    return asyncio.create_task(
        kit.handle(kit.record(names.ORDERS, paid("o-1", "600.00", id="e-1")))
    )


async def test_a_scheduler_run_during_a_batch_delivery_does_not_publish_it_again() -> None:
    publisher = GatedPublisher()
    kit = Kit(publisher=publisher)
    await kit.handle(kit.record(names.CUSTOMERS, upsert()))
    publisher.hold()
    batch = _order(kit)
    await asyncio.wait_for(publisher.waiting.wait(), WAIT)
    [pending] = await kit.repository.pending_outbox()
    held = [e.output_id for e in pending.entries]
    assert held
    assert all(kit.pipeline.outbox.in_flight("c-1", i) for i in held)
    kit.now = NOW + timedelta(hours=1)  # long past the grace: the sweep reads them as due
    run = asyncio.create_task(scheduler(kit).run_once())
    await _let_others_run()
    assert publisher.calls == 1  # the batch's delivery, held
    assert not run.done()  # the sweep waits for it
    publisher.release()
    await asyncio.wait_for(asyncio.gather(batch, run), WAIT)

    ids = _output_ids(publisher.sent)
    assert set(held) <= set(ids)
    assert _duplicates(ids) == {}
    assert run.result().republished == 0
    assert await kit.repository.pending_outbox() == []


class SweepAfterSave:
    """Wraps the store: right after a save, an hour passes and the scheduler sweeps, before
    the batch that saved gets to deliver its outputs."""

    def __init__(self, kit: Kit, sweep: Scheduler) -> None:
        self.kit, self.inner, self.sweep = kit, kit.repository, sweep
        self.swept = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def save_batch(self, writes: Sequence[CustomerWrite]) -> SaveResult:
        result = await self.inner.save_batch(writes)
        self.kit.now += timedelta(hours=1)
        self.swept += (await self.sweep.run_once()).republished
        return result


async def test_a_batch_skips_what_the_sweep_published_between_its_save_and_its_delivery() -> None:
    kit = Kit()
    await kit.handle(kit.record(names.CUSTOMERS, upsert()))
    before = len(kit.publisher.sent)
    swept = SweepAfterSave(kit, scheduler(kit))
    kit.pipeline.repository = swept  # type: ignore[assignment]

    await kit.handle(kit.record(names.ORDERS, paid("o-1", "600.00", id="e-1")))

    ids = _output_ids(kit.publisher.sent[before:])
    assert swept.swept == len(ids) >= 2  # all went out with the sweep, none with the batch
    assert _duplicates(ids) == {}
    assert await kit.repository.pending_outbox() == []


async def test_two_agents_touching_one_customer_publish_its_outputs_once_in_order() -> None:
    publisher = GatedPublisher()
    kit = Kit(publisher=publisher)
    await kit.handle(kit.record(names.CUSTOMERS, upsert()))
    before = len(publisher.sent)
    publisher.hold()
    orders = _order(kit)
    await asyncio.wait_for(publisher.waiting.wait(), WAIT)
    # Saved and unlocked but not marked sent: the adjustments agent loads c-1 with them.
    [pending] = await kit.repository.pending_outbox()
    first = [e.output_id for e in pending.entries]
    adjust = envelope("points.adjust", {"delta": 1000}, id="a-1")
    adjustments = asyncio.create_task(kit.handle(kit.record(names.ADJUSTMENTS, adjust)))

    def adjustments_claimed() -> bool:
        return any(
            e.output_id not in first and kit.pipeline.outbox.in_flight("c-1", e.output_id)
            for p in kit.repository.customers["c-1"]["outbox"]
            for e in [docs.decode_outbox(p)]
        )

    await _until(adjustments_claimed, "the adjustments batch delivers its own outputs")
    await _let_others_run()
    assert publisher.calls == 1  # it waits for the orders batch's delivery before its own
    publisher.release()
    await asyncio.wait_for(asyncio.gather(orders, adjustments), WAIT)

    ids = _output_ids(publisher.sent[before:])
    assert _duplicates(ids) == {}
    assert ids[: len(first)] == first  # the customer's earlier outputs first
    assert len(ids) > len(first)
    assert await kit.repository.pending_outbox() == []


# --- the grace period -------------------------------------------------------------------------


async def test_the_scheduler_republishes_only_entries_older_than_the_grace() -> None:
    kit = Kit()
    await _stored(
        kit.repository,
        _entry("young", NOW - timedelta(seconds=30)),
        _entry("old", NOW - timedelta(minutes=2)),
        _entry("legacy"),  # stored before entries had a write time: due
    )
    run = scheduler(kit, outbox_grace=timedelta(seconds=60))

    assert (await run.run_once()).republished == 2
    assert _output_ids(kit.publisher.sent) == ["old", "legacy"]
    [left] = await kit.repository.pending_outbox()
    assert [e.output_id for e in left.entries] == ["young"]

    kit.now = NOW + timedelta(seconds=31)
    assert (await run.run_once()).republished == 1
    assert _output_ids(kit.publisher.sent) == ["old", "legacy", "young"]
    assert await kit.repository.pending_outbox() == []


async def test_the_republish_at_start_takes_every_entry_however_young() -> None:
    kit = Kit()
    await _stored(kit.repository, _entry("young", NOW), _entry("legacy"))
    assert await kit.pipeline.outbox.republish_backlog() == 2
    assert await kit.repository.pending_outbox() == []


async def test_a_batch_writes_its_outbox_entries_at_its_clock_reading() -> None:
    publisher = GatedPublisher()
    kit = Kit(publisher=publisher, now=NOW + timedelta(minutes=5))
    await kit.handle(kit.record(names.CUSTOMERS, upsert()))
    publisher.hold()
    batch = _order(kit)
    await asyncio.wait_for(publisher.waiting.wait(), WAIT)
    [pending] = await kit.repository.pending_outbox()
    publisher.release()
    await asyncio.wait_for(batch, WAIT)

    assert pending.entries
    assert {e.written_at for e in pending.entries} == {NOW + timedelta(minutes=5)}
