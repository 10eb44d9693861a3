"""The transactional outbox's second half: publish what the store holds, then mark it sent.

Outputs are written into the customer document in the same update as the state (see
``workers.fold``); here they are published (the producer waits for every acknowledgement) and
only then removed from the outbox. A crash in between republishes them: output ids are
deterministic, so consumers deduplicate. Unsent entries are republished at start (all of them)
and by the scheduler (those older than ``LOYALTY_OUTBOX_GRACE``: younger ones are the business
of the worker that wrote them, which publishes them right after its save).

Within a process, an entry is published by one ``deliver`` call at a time: a call claims the
entries no other call holds, waits for the calls holding the others, and skips those this
process marked sent lately. So the scheduler's sweep, or a second agent that loaded a customer
between another agent's save and its ``mark_sent``, does not publish them again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from aiokafka import AIOKafkaProducer

from store.repository import CustomerRepository, OutboxEntry
from topics.names import Topics
from workers.health import Health, retrying
from workers.metrics import Metrics


@dataclass(frozen=True)
class Outgoing:
    """One message to produce: namespaced topic, key and value."""

    topic: str
    key: bytes | None
    value: bytes


class Publisher(Protocol):
    """Produces messages and returns once every one is acknowledged by the cluster."""

    async def publish(self, messages: Sequence[Outgoing]) -> None:
        """Send all and wait for every acknowledgement; raise if any failed."""
        ...

    async def ping(self) -> None:
        """Raise unless the cluster answers."""
        ...


class KafkaPublisher:
    """``Publisher`` over an idempotent aiokafka producer (acks=all)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def publish(self, messages: Sequence[Outgoing]) -> None:
        """Send all, then wait for every delivery."""
        futures = [
            await self.producer.send(m.topic, m.value, key=m.key)  # batches without waiting
            for m in messages
        ]
        for future in futures:
            await future

    async def ping(self) -> None:
        """Fetch cluster metadata (raises when no broker answers)."""
        await self.producer.client.fetch_all_metadata()


RECENTLY_SENT = 50_000
"""Outputs per process remembered as published and marked sent (first in, first out)."""

Claim = tuple[str, str]
"""An outbox entry as claimed: customer id and output id."""


class Outbox:
    """Publishes outbox entries and marks them sent, retrying both until they succeed.

    One per process. ``_in_flight`` maps each entry a ``deliver`` call is publishing to that
    call's event (set when the call ends, however it ends); ``_sent`` remembers the last
    ``recently_sent`` entries this process published and marked sent. A remembered entry costs
    about 110 bytes (a tuple, a set slot and a deque slot, measured with tracemalloc) plus its
    two id strings (about 200 bytes for a UUID customer id and a UUID-based output id): the
    default 50,000 hold about 15 MB at most. The memory only has to cover a race window (a
    scheduler page read, or one batch from its load to its delivery): seconds of outputs.
    """

    def __init__(
        self,
        repository: CustomerRepository,
        publisher: Publisher,
        topics: Topics,
        health: Health,
        metrics: Metrics,
        *,
        recently_sent: int = RECENTLY_SENT,
    ) -> None:
        self.repository, self.publisher, self.topics = repository, publisher, topics
        self.health, self.metrics = health, metrics
        self._in_flight: dict[Claim, asyncio.Event] = {}
        self._sent: set[Claim] = set()
        self._sent_order: deque[Claim] = deque(maxlen=recently_sent)

    def in_flight(self, customer_id: str, output_id: str) -> bool:
        """Whether a ``deliver`` call of this process is publishing this entry right now."""
        return (customer_id, output_id) in self._in_flight

    def recently_sent(self, customer_id: str, output_id: str) -> bool:
        """Whether this process published this entry and marked it sent lately."""
        return (customer_id, output_id) in self._sent

    async def deliver(self, entries: Mapping[str, Sequence[OutboxEntry]]) -> int:
        """Publish these customers' entries, then mark them sent; return how many it published.

        Returns once every entry is marked sent: by this call, or by the call of this process
        that was publishing it (waited for; if that call was cancelled, this one takes over).
        Entries this process marked sent lately are not published again, only marked sent.
        """
        todo = [(cid, e) for cid, batch in entries.items() for e in batch]
        published = 0
        while todo:
            count, todo = await self._deliver_once(todo)
            published += count
        return published

    async def _deliver_once(
        self, todo: Sequence[tuple[str, OutboxEntry]]
    ) -> tuple[int, list[tuple[str, OutboxEntry]]]:
        """Claim what nobody holds, wait for the holders of the rest, publish and mark ours.

        Returns how many this call published, and the entries it waited for that are still not
        marked sent (their holder was cancelled): the caller delivers those again.
        """
        mine: dict[Claim, OutboxEntry] = {}
        done: list[Claim] = []
        theirs: dict[Claim, OutboxEntry] = {}
        holders: list[asyncio.Event] = []
        for cid, entry in todo:
            claim = (cid, entry.output_id)
            if claim in mine or claim in theirs:
                continue
            if claim in self._sent:
                done.append(claim)  # sent already; the store may hold it again: mark it
            elif (holder := self._in_flight.get(claim)) is not None:
                theirs[claim] = entry
                holders.append(holder)
            else:
                mine[claim] = entry
        # Claimed with no await since the checks above: no other call can claim them too.
        ours = asyncio.Event()
        for claim in mine:
            self._in_flight[claim] = ours
        try:
            # Holders claimed before this call, so they never wait for it (no deadlock); and
            # waiting first keeps a customer's earlier outputs ahead of its later ones.
            for holder in holders:
                await holder.wait()
            await self._publish_and_mark(mine, done)
        finally:
            for claim in mine:
                del self._in_flight[claim]
            ours.set()
        left = [(claim[0], e) for claim, e in theirs.items() if claim not in self._sent]
        return len(mine), left

    async def _publish_and_mark(self, mine: Mapping[Claim, OutboxEntry], done: list[Claim]) -> None:
        messages = [
            Outgoing(self.topics.name(e.topic), e.key.encode("utf-8"), e.value)
            for e in mine.values()
        ]
        if messages:
            await retrying(
                lambda: self.publisher.publish(messages),
                what="publish outputs",
                dependency="kafka",
                health=self.health,
            )
            for message in messages:
                self.metrics.published.labels(topic=self.topics.contract_name(message.topic)).inc()
        sent: dict[str, list[str]] = {}
        for cid, output_id in (*mine, *done):
            sent.setdefault(cid, []).append(output_id)
        if sent:
            await retrying(
                lambda: self.repository.mark_sent(sent),
                what="mark outputs sent",
                dependency="store",
                health=self.health,
            )
        for claim in mine:
            self._remember(claim)

    def _remember(self, claim: Claim) -> None:
        if claim in self._sent or not self._sent_order.maxlen:
            return
        if len(self._sent_order) == self._sent_order.maxlen:
            self._sent.discard(self._sent_order[0])  # the deque drops it on the append
        self._sent_order.append(claim)
        self._sent.add(claim)

    async def republish_backlog(
        self, *, limit: int = 1000, written_before: datetime | None = None
    ) -> int:
        """Publish the unsent entries (only those written before ``written_before``, if given).

        Pages of ``limit`` customers; each page is marked sent before the next is read
        (``deliver`` returns only then), so the next query finds the customers after it.
        """
        total = 0
        while True:
            pending = await retrying(
                lambda: self.repository.pending_outbox(limit=limit, written_before=written_before),
                what="read outbox backlog",
                dependency="store",
                health=self.health,
            )
            self.metrics.outbox_backlog.set(len(pending))
            if not pending:
                return total
            total += await self.deliver({p.customer_id: p.entries for p in pending})
            if len(pending) < limit:
                self.metrics.outbox_backlog.set(0)
                return total
