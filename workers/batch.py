"""One batch through the pipeline: decode -> load -> fold -> save -> side effects.

``Pipeline.handle`` never raises (faust would acknowledge the batch anyway): store and Kafka
errors are retried with bounded backoff until they succeed, so it returns only once everything
the batch did is durable; only cancellation (shutdown) escapes, and then nothing is
acknowledged. A version conflict reloads the customers concerned and folds their records again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TypeVar

import structlog

from models.messages import CustomerUpserted, InputMessage, ManageTier
from store.errors import is_permanent
from store.repository import (
    ActivityRecord,
    CustomerRepository,
    LoadRequest,
    OutboxEntry,
    normalize_email,
)
from topics.codec import to_json
from topics.names import Topics
from topics.routing import DeadLetter
from workers.erasure import scrub
from workers.fold import Decider, Fold, Folder, Outcome, Record, dead_letter, decode
from workers.groups import fan_out_once
from workers.health import Health, retrying
from workers.locks import CustomerLocks
from workers.metrics import Metrics
from workers.outbox import Outbox, Outgoing, Publisher

log = structlog.get_logger("loyalty.worker")
T = TypeVar("T")

YIELD_EVERY = 200
"""Records folded between two yields to the event loop (keeps consumer heartbeats flowing)."""


@dataclass(frozen=True)
class RawRecord:
    """A record as consumed: where it was, its key and its value."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


DeciderFactory = Callable[[datetime], Decider]
"""Bind the program, keys and this batch's clock reading into ``decide``."""
KeysOf = Callable[[InputMessage], tuple[str, ...]]


class Pipeline:
    """Runs batches of input records against the store and the cluster."""

    def __init__(
        self,
        *,
        repository: CustomerRepository,
        publisher: Publisher,
        topics: Topics,
        decider: DeciderFactory,
        applied_keys: KeysOf,
        clock: Callable[[], datetime],
        health: Health,
        metrics: Metrics,
    ) -> None:
        self.repository, self.publisher, self.topics = repository, publisher, topics
        self.decider, self.applied_keys, self.clock = decider, applied_keys, clock
        self.health, self.metrics = health, metrics
        self.outbox = Outbox(repository, publisher, topics, health, metrics)
        self.locks = CustomerLocks()

    async def handle(self, raw: Sequence[RawRecord]) -> None:
        """Process one batch until everything it does is durable (see the module docstring)."""
        if not raw:
            return
        started = time.perf_counter()
        topic = self.topics.contract_name(raw[0].topic)
        self.metrics.batch_size.labels(topic=topic).observe(len(raw))
        records = [
            decode(r.topic, r.partition, r.offset, r.key, r.value, topics=self.topics) for r in raw
        ]
        try:
            await self.run(records)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A bug, not a dependency failure (those are retried inside). Redo the batch one
            # record at a time (offsets and ids make the redo safe) so that only the record
            # that fails is set aside, on the dead-letter topic where it can be replayed.
            log.exception("batch failed; retrying record by record", topic=topic, size=len(raw))
            for record in records:
                await self._isolate(record)
        self.metrics.batch_seconds.labels(topic=topic).observe(time.perf_counter() - started)

    async def _isolate(self, record: Record) -> None:
        """Run one record alone; dead-letter it if it still fails."""
        try:
            await self.run([record])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception(
                "record failed; dead-lettered",
                event_id=record.message.id if record.message is not None else None,
                customer_id=record.customer_id,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
            letter = dead_letter(
                record,
                "processing_failed",
                f"the worker failed on this message ({type(exc).__name__}: {exc}); it was not "
                "applied: report it with the worker's log, then replay it",
            )
            await self._publish([_letter(self.topics, letter)], "publish dead letter")
            self.metrics.dead_letters.labels(code="processing_failed").inc()
            self._count(Outcome(record, "dead_letter", "processing_failed", str(exc)))

    async def run(self, records: Sequence[Record]) -> None:
        """Fan out group commands, fold the rest, and carry out what the fold decided."""
        rest: list[Record] = []
        for record in records:
            message = record.message
            if isinstance(message, ManageTier) and message.data.group_id is not None:
                await self.fan_out(record, message)
            else:
                rest.append(record)
        pending = rest
        created: set[str] = set()
        attempt = 0
        while pending:
            attempt += 1
            done, redo, result = await self._fold_and_save(pending)
            created |= result.created
            with self.metrics.stage("side_effects"):
                await self._side_effects(result, done)
            if redo:
                self.metrics.conflicts.inc(len(redo))
                log.info("version conflict; redoing", customers=len(redo), attempt=attempt)
                if attempt > 3:
                    await asyncio.sleep(min(1.0, 0.05 * attempt))
            pending = [r for r in pending if r.customer_id in redo]
        if created:
            await self.drain(created)

    async def _fold_and_save(
        self, records: Sequence[Record]
    ) -> tuple[set[str | None], set[str], Fold]:
        """Load, fold and save once; return the customers done, those to redo, and the fold.

        The batch's customers are locked from the load to the save, so the other agents of this
        process wait for them instead of losing a version check (workers/locks.py).
        """
        ids = {r.customer_id for r in records if r.customer_id is not None}
        async with self.locks.holding(ids):
            return await self._fold_and_save_locked(records)

    async def _fold_and_save_locked(
        self, records: Sequence[Record]
    ) -> tuple[set[str | None], set[str], Fold]:
        records = await self._after_parked(records)
        requests = load_requests(records, self.applied_keys)
        with self.metrics.stage("load"):
            loaded = await self._store(
                lambda: self.repository.load_many(requests), "load customers"
            )
        emails = {
            normalize_email(r.message.data.email)
            for r in records
            if isinstance(r.message, CustomerUpserted)
        }
        owners = (
            await self._store(lambda: self.repository.email_owners(emails), "look up emails")
            if emails
            else {}
        )
        now = self.clock()
        folder = Folder(loaded, self.decider(now), self.applied_keys, dict(owners), now)
        with self.metrics.stage("fold"):
            result = await _fold_yielding(folder, records)
        result.writes, forgotten = scrub(result.writes)
        for customer_id in forgotten:
            # Before the save: a crash in between redelivers customer.forget (workers/erasure).
            await self._store(
                partial(self.repository.erase_personal_data, customer_id), "erase personal data"
            )
        with self.metrics.stage("save"):
            saved = await self._store(
                lambda: self.repository.save_batch(result.writes), "save batch"
            )
        redo = set(saved.conflicts) | set(saved.email_taken)
        done: set[str | None] = {r.customer_id for r in records} - redo
        result.created -= redo
        return done, redo, result

    async def _after_parked(self, records: Sequence[Record]) -> list[Record]:
        """Put the messages still parked for the batch's customers before the batch's own.

        The agent that creates a customer drains its parked messages on its own time, while
        the agents of the other topics go on: without this, a later message on the parked one's
        topic-partition could be applied before it (per-customer order, invariant 3).
        """
        ids = {r.customer_id for r in records if r.customer_id is not None and r.parked is None}
        if not ids:
            return list(records)
        # The parked collection is empty nearly always: one cheap count spares the lookup.
        if not await self._store(self.repository.parked_count, "count parked messages"):
            return list(records)
        parked = await self._store(lambda: self.repository.parked_for(ids), "read parked messages")
        present = {
            (r.parked.topic, r.parked.partition, r.parked.offset)
            for r in records
            if r.parked is not None
        }
        earlier = [
            decode(p.topic, p.partition, p.offset, p.key, p.value, topics=self.topics, parked=p)
            for messages in parked.values()
            for p in messages
            if (p.topic, p.partition, p.offset) not in present
        ]
        return [*earlier, *records]

    async def _side_effects(self, result: Fold, done: set[str | None]) -> None:
        """Record, park, dead-letter and publish what the saved part of a fold produced."""
        for customer_id, refusals in result.refusals.items():
            if customer_id in done:
                await self._refusal(customer_id, refusals)
        letters = [_letter(self.topics, d) for d in result.dead_letters]
        if letters:
            await retrying(
                lambda: self.publisher.publish(letters),
                what="publish dead letters",
                dependency="kafka",
                health=self.health,
            )
            for letter in result.dead_letters:
                self.metrics.dead_letters.labels(code=letter.error_code).inc()
        parked = [p for p in result.park if p.customer_id in done]
        if parked:
            await self._store(lambda: self.repository.park(parked), "park messages")
        # With what an earlier, interrupted run left unsent for these customers.
        entries: dict[str, Sequence[OutboxEntry]] = {
            w.customer_id: (*(w.loaded.outbox if w.loaded else ()), *w.outbox)
            for w in result.writes
            if w.customer_id in done
        }
        await self.outbox.deliver(entries)
        drained = [p for p in result.drained if p.customer_id in done]
        if drained:
            await self._store(lambda: self.repository.unpark(drained), "unpark messages")
        for outcome in result.outcomes:
            if outcome.record.customer_id in done or outcome.record.customer_id is None:
                self._count(outcome)
        if parked:
            # The customer may have been created since the load (another agent): try again now.
            ids = {p.customer_id for p in parked}
            requests = [LoadRequest(customer_id=c) for c in ids]
            exist = await self._store(lambda: self.repository.load_many(requests), "recheck")
            if exist:
                await self.drain(set(exist))

    async def _refusal(self, customer_id: str, refusals: Sequence[ActivityRecord]) -> None:
        await self._store(
            lambda: self.repository.append_activity(customer_id, refusals), "record refusal"
        )

    async def drain(self, customer_ids: set[str]) -> None:
        """Apply, in arrival order, the messages parked for these (now existing) customers."""
        parked = await self._store(
            lambda: self.repository.parked_for(customer_ids), "read parked messages"
        )
        records = [
            decode(p.topic, p.partition, p.offset, p.key, p.value, topics=self.topics, parked=p)
            for messages in parked.values()
            for p in messages
        ]
        if records:
            log.info("applying parked messages", customers=len(parked), messages=len(records))
            await self.run(records)

    async def fan_out(self, record: Record, command: ManageTier) -> None:
        """Publish one copy of a group command per member, keyed by the member."""
        group_id = command.data.group_id
        assert group_id is not None
        # A group the program does not declare would reach nobody: refuse it (dead letter).
        refusal = self.decider(self.clock())(None, command).rejection
        if refusal is not None and refusal.code == "unknown_group":
            letter = dead_letter(record, refusal.code, refusal.reason)
            await self._publish([_letter(self.topics, letter)], "refuse group command")
            self.metrics.dead_letters.labels(code=refusal.code).inc()
            self._count(Outcome(record, "dead_letter", refusal.code, refusal.reason))
            return
        # A store error mid-cursor starts the fan-out over: the copies' ids make repeats harmless.
        publish = partial(self._publish, what="fan out group command")
        members = await self._store(
            partial(fan_out_once, self.repository, command, self.topics, publish),
            "stream group members",
        )
        log.info("group command fanned out", event_id=command.id, group=group_id, members=members)
        self._count(Outcome(record, "fanned_out"))

    async def _publish(self, messages: Sequence[Outgoing], what: str) -> None:
        await retrying(
            lambda: self.publisher.publish(messages),
            what=what,
            dependency="kafka",
            health=self.health,
        )

    async def _store(self, operation: Callable[[], Awaitable[T]], what: str) -> T:
        # A refused write or a bug is raised, not retried: the batch's record-by-record redo
        # then sets aside only the record it belongs to (store/errors.py).
        return await retrying(
            operation, what=what, dependency="store", health=self.health, permanent=is_permanent
        )

    def _count(self, outcome: Outcome) -> None:
        self.metrics.events.labels(type=outcome.message_type, outcome=outcome.kind).inc()
        record = outcome.record
        fields = {
            "event_id": record.message.id if record.message is not None else None,
            "customer_id": record.customer_id,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "type": outcome.message_type,
            "outcome": outcome.kind,
        }
        if outcome.kind == "parked":
            log.info("record parked until its customer exists", **fields)
        elif outcome.code is not None:
            log.info("record refused", code=outcome.code, reason=outcome.reason, **fields)
        else:
            log.debug("record", **fields)


def _letter(topics: Topics, letter: DeadLetter) -> Outgoing:
    key = letter.key.encode("utf-8") if letter.key is not None else None
    return Outgoing(topics.dead_letter, key, to_json(letter))


def load_requests(records: Sequence[Record], keys_of: KeysOf) -> list[LoadRequest]:
    """One request per customer, with the message keys and order ids its records mention."""
    ids: dict[str, set[str]] = {}
    orders: dict[str, set[str]] = {}
    for record in records:
        message = record.message
        if message is None:
            continue
        ids.setdefault(message.customer_id, set()).update(keys_of(message))
        order_id = getattr(message.data, "order_id", None)
        if isinstance(order_id, str):
            orders.setdefault(message.customer_id, set()).add(order_id)
    return [
        LoadRequest(
            customer_id=cid,
            message_ids=frozenset(message_ids),
            order_ids=frozenset(orders.get(cid, ())),
        )
        for cid, message_ids in ids.items()
    ]


async def _fold_yielding(folder: Folder, records: Sequence[Record]) -> Fold:
    """Fold record by record, yielding to the loop now and then so heartbeats are not starved."""
    for n, record in enumerate(records, start=1):
        folder.out.outcomes.append(folder.apply(record))
        if n % YIELD_EVERY == 0:
            await asyncio.sleep(0)
    return folder.finish()
