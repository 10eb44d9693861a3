"""The transactional outbox's second half: publish what the store holds, then mark it sent.

Outputs are written into the customer document in the same update as the state (see
``workers.fold``); here they are published (the producer waits for every acknowledgement) and
only then removed from the outbox. A crash in between republishes them: output ids are
deterministic, so consumers deduplicate. Unsent entries are republished at start, after a
partition assignment and by the scheduler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


class Outbox:
    """Publishes outbox entries and marks them sent, retrying both until they succeed."""

    def __init__(
        self,
        repository: CustomerRepository,
        publisher: Publisher,
        topics: Topics,
        health: Health,
        metrics: Metrics,
    ) -> None:
        self.repository, self.publisher, self.topics = repository, publisher, topics
        self.health, self.metrics = health, metrics

    async def deliver(self, entries: Mapping[str, Sequence[OutboxEntry]]) -> int:
        """Publish these customers' entries, then mark them sent; return how many."""
        messages = [
            Outgoing(self.topics.name(e.topic), e.key.encode("utf-8"), e.value)
            for batch in entries.values()
            for e in batch
        ]
        if not messages:
            return 0
        await retrying(
            lambda: self.publisher.publish(messages),
            what="publish outputs",
            dependency="kafka",
            health=self.health,
        )
        for message in messages:
            self.metrics.published.labels(topic=self.topics.contract_name(message.topic)).inc()
        sent = {cid: [e.output_id for e in batch] for cid, batch in entries.items() if batch}
        await retrying(
            lambda: self.repository.mark_sent(sent),
            what="mark outputs sent",
            dependency="store",
            health=self.health,
        )
        return len(messages)

    async def republish_backlog(self, *, limit: int = 1000) -> int:
        """Publish every unsent entry the store holds (pages of ``limit`` customers)."""
        total = 0
        while True:
            pending = await retrying(
                lambda: self.repository.pending_outbox(limit=limit),
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
