"""The consume loop every downstream consumer shares: poll, side effect, commit, retry, dead-letter.

One consumer group per consumer (``<namespace>loyalty.consumers.<name>``), plain aiokafka,
auto-commit off. A batch is committed only after every record in it is *finished*: its side
effect is durable (the consumer says so by returning), or it went to the dead-letter topic with
its reason (the dead-letter write is awaited before the commit). So a crash at any point
redelivers what was not finished, never loses it, and each consumer deduplicates by the
message ``id``.

What a consumer's ``process`` may answer for each record:

* ``Done`` (or nothing): finished.
* ``Retry(reason)``: failed for now; retried with exponential backoff and full jitter, at most
  ``LOYALTY_CONSUMER_MAX_ATTEMPTS`` times, then dead-lettered as ``retries_exhausted``.
* ``Reject(code, reason)``: never going to work; dead-lettered at once.

A consumer raises ``DependencyUnavailableError`` when the thing it writes to (the SMTP server,
MongoDB) cannot be reached at all. That is an outage, not a bad message: the loop commits the
finished prefix of each partition, rewinds to the first unfinished record, waits (backoff, no
bound) while still polling so the group keeps the partitions, and tries again. Nothing is
dead-lettered because a server was down.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from consumers.metrics import ConsumerMetrics
from topics.names import Topics
from topics.routing import DeadLetter

log = structlog.get_logger(__name__)

READY_TIMEOUT = 3.0
"""Seconds a readiness check may take before the answer is "not ready"."""


@dataclass(frozen=True)
class Done:
    """The record is finished: its side effect is durable (or it needed none)."""


@dataclass(frozen=True)
class Retry:
    """The record failed for now; try it again later."""

    reason: str


@dataclass(frozen=True)
class Reject:
    """The record can never succeed; dead-letter it with this code and reason."""

    code: str
    reason: str


Outcome = Done | Retry | Reject
DONE = Done()


class DependencyUnavailableError(Exception):
    """A server the consumer needs is down; the batch waits, nothing is dead-lettered."""


class _StoppedError(Exception):
    """Asked to stop while records wait for a retry: leave them uncommitted for next time."""


@dataclass(frozen=True)
class Envelope:
    """The parts of a message's envelope every consumer reads, plus the whole JSON object."""

    id: str
    type: str
    customer_id: str
    body: dict[str, Any]


@dataclass
class Item:
    """One record of a batch on its way through ``process``."""

    record: ConsumerRecord[bytes, bytes]
    envelope: Envelope
    attempts: int = 0
    outcome: Outcome | None = None


class Consumer(Protocol):
    """What a downstream consumer gives the loop."""

    name: str
    """Short name: the consumer group, metrics label and ``--only`` choice."""
    topics: tuple[str, ...]
    """Contract topic names it reads (the loop adds the namespace)."""
    types: frozenset[str]
    """Message types it acts on; other types on its topics are skipped (forward compatible)."""

    async def process(self, items: Sequence[Item]) -> list[Outcome]:
        """Apply the side effect of each item; one outcome per item, in order."""
        ...

    async def ready(self) -> bool:
        """Return whether the consumer's own dependencies answer."""
        ...


class EnvelopeError(ValueError):
    """A record whose value is not a message envelope; the text says what is wrong."""


def decode_envelope(value: bytes | None) -> Envelope:
    """Parse the JSON envelope; raise EnvelopeError naming what is wrong."""
    if value is None:
        raise EnvelopeError("the record has no value (a tombstone); expected a JSON envelope")
    try:
        body = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError(f"not UTF-8 JSON: {exc}") from None
    if not isinstance(body, dict):
        raise EnvelopeError("the value must be a JSON object (the envelope)")
    for name in ("id", "type", "customer_id"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise EnvelopeError(f"the envelope needs a non-empty string {name!r}")
    if not isinstance(body.get("data", {}), dict):
        raise EnvelopeError("'data' must be a JSON object")
    return Envelope(id=body["id"], type=body["type"], customer_id=body["customer_id"], body=body)


@dataclass
class RetryPolicy:
    """Bounded exponential backoff with full jitter (a random wait up to the exponential cap)."""

    max_attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        """Return the wait before attempt number ``attempt + 1`` (``attempt`` >= 1)."""
        ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
        # Full jitter spreads the retries of many records (and many consumers) apart.
        return self.rng.uniform(ceiling / 2, ceiling)


class ConsumeLoop:
    """Runs one consumer: poll a batch, process it, dead-letter failures, commit."""

    def __init__(
        self,
        consumer: Consumer,
        *,
        kafka: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        topics: Topics,
        policy: RetryPolicy,
        metrics: ConsumerMetrics,
        batch_size: int = 500,
    ) -> None:
        self.consumer = consumer
        self.kafka = kafka
        self.producer = producer
        self.topics = topics
        self.policy = policy
        self.metrics = metrics
        self.batch_size = batch_size
        self.outage: str | None = None
        self._stopping = asyncio.Event()
        self._outage_attempts = 0
        self.log = log.bind(consumer=consumer.name)

    @staticmethod
    def group_id(topics: Topics, name: str) -> str:
        """Return the consumer group of a consumer under a namespace."""
        return f"{topics.namespace}loyalty.consumers.{name}"

    def stop(self) -> None:
        """Ask the loop to finish the batch in flight, commit and return."""
        self._stopping.set()

    async def ready(self) -> bool:
        """Return whether the loop runs without an outage and Kafka and its dependencies answer."""
        if self.outage is not None or self._stopping.is_set():
            return False
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                await self.kafka.topics()
                return await self.consumer.ready()
        except (KafkaError, TimeoutError):
            return False

    async def run(self) -> None:
        """Consume until ``stop``; every batch is committed once finished."""
        self.log.info(
            "consumer_started", topics=[self.topics.name(t) for t in self.consumer.topics]
        )
        while not self._stopping.is_set():
            batch = await self.kafka.getmany(timeout_ms=500, max_records=self.batch_size)
            records = [record for part in batch.values() for record in part]
            if records:
                await self.handle(records)
        self.log.info("consumer_stopped")

    async def handle(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Finish a polled batch and commit it, or rewind to retry it after an outage."""
        started = time.perf_counter()
        items: list[Item] = []
        finished: set[int] = set()
        try:
            await self._decode(records, items, finished)
            await self._process(items)
        except (DependencyUnavailableError, _StoppedError) as exc:
            finished |= {id(item.record) for item in items if item.outcome is not None}
            resume = await self._commit_prefix(records, finished)
            for tp, offset in resume.items():
                # Rewind so the next poll hands the unfinished records back (still polling keeps
                # the partitions in the group; a long wait without polls would give them away).
                if tp in self.kafka.assignment():
                    self.kafka.seek(tp, offset)
            if isinstance(exc, DependencyUnavailableError):
                await self._wait_out(str(exc))
            return
        if self.outage is not None:
            self.log.info("dependency_back", after_attempts=self._outage_attempts)
            self.outage, self._outage_attempts = None, 0
            self.metrics.outage.labels(self.consumer.name).set(0)
        await self._commit_prefix(records, {id(r) for r in records})
        self.metrics.batch_seconds.labels(self.consumer.name).observe(time.perf_counter() - started)

    async def _decode(
        self, records: list[ConsumerRecord[bytes, bytes]], items: list[Item], finished: set[int]
    ) -> None:
        """Fill the items to process and the records already finished (skipped or bad)."""
        seen: set[str] = set()
        for record in records:
            try:
                envelope = decode_envelope(record.value)
            except EnvelopeError as exc:
                await self._dead_letter(record, "invalid_message", str(exc))
                finished.add(id(record))
                continue
            if envelope.type not in self.consumer.types or envelope.id in seen:
                # Not ours, or the same id twice in one batch: the first one does the work.
                self.metrics.messages.labels(self.consumer.name, "skipped").inc()
                finished.add(id(record))
                continue
            seen.add(envelope.id)
            items.append(Item(record=record, envelope=envelope))

    async def _process(self, items: list[Item]) -> None:
        """Run the items through the consumer until each has a final outcome."""
        pending = items
        while pending:
            for item in pending:
                item.attempts += 1
            outcomes = await self._call(pending)
            if len(outcomes) != len(pending):
                raise RuntimeError(
                    f"{self.consumer.name}.process returned {len(outcomes)} outcomes "
                    f"for {len(pending)} items"
                )
            retry: list[Item] = []
            for item, outcome in zip(pending, outcomes, strict=True):
                if isinstance(outcome, Retry) and item.attempts < self.policy.max_attempts:
                    self.metrics.retries.labels(self.consumer.name).inc()
                    self.log.warning(
                        "retrying",
                        message_id=item.envelope.id,
                        attempt=item.attempts,
                        reason=outcome.reason,
                    )
                    retry.append(item)
                    continue
                await self._finish(item, outcome)
            if retry:
                await self._sleep(self.policy.delay(max(item.attempts for item in retry)))
                if self._stopping.is_set():
                    raise _StoppedError
            pending = retry

    async def _call(self, items: list[Item]) -> list[Outcome]:
        """Run the consumer; an unexpected error is isolated to the record(s) that raise it."""
        try:
            return await self.consumer.process(items)
        except DependencyUnavailableError:
            raise
        except Exception as exc:
            # A bug must not stop the stream, nor take other records down with it: the batch is
            # split until the failing record is alone, which is then retried and dead-lettered
            # with the error like any failure. Nothing is committed unfinished.
            self.log.exception("consumer_error", records=len(items))
            if len(items) == 1:
                return [Retry(f"{type(exc).__name__}: {exc}")]
            outcomes: list[Outcome] = []
            for item in items:
                outcomes += await self._call([item])
            return outcomes

    async def _finish(self, item: Item, outcome: Outcome) -> None:
        if isinstance(outcome, Retry):
            reason = f"gave up after {item.attempts} attempts: {outcome.reason}"
            await self._dead_letter(item.record, "retries_exhausted", reason)
        elif isinstance(outcome, Reject):
            await self._dead_letter(item.record, outcome.code, outcome.reason)
        else:
            self.metrics.messages.labels(self.consumer.name, "done").inc()
        item.outcome = outcome

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], code: str, reason: str
    ) -> None:
        """Write the record to the dead-letter topic and wait until Kafka has it."""
        letter = DeadLetter.for_record(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            error_code=code,
            error_message=f"{self.consumer.name}: {reason}",
        )
        try:
            await self.producer.send_and_wait(
                self.topics.dead_letter, letter.model_dump_json().encode("utf-8"), key=record.key
            )
        except KafkaError as exc:
            raise DependencyUnavailableError(f"Kafka (dead-letter topic): {exc}") from exc
        self.metrics.messages.labels(self.consumer.name, "dead_letter").inc()
        self.metrics.dead_letters.labels(self.consumer.name, code).inc()
        self.log.error(
            "dead_lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error_code=code,
            reason=reason,
        )

    async def _commit_prefix(
        self, records: list[ConsumerRecord[bytes, bytes]], finished: set[int]
    ) -> dict[TopicPartition, int]:
        """Commit, per partition, up to the first unfinished record; return where each resumes."""
        offsets: dict[TopicPartition, int] = {}
        resume: dict[TopicPartition, int] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            if tp in resume:
                continue
            if id(record) not in finished:
                resume[tp] = record.offset
                continue
            offsets[tp] = record.offset + 1
        if offsets:
            try:
                await self.kafka.commit(offsets)
            except (CommitFailedError, KafkaError) as exc:
                # The partitions moved to another member (rebalance): it gets the records
                # again and the consumers' deduplication by id makes the repeat harmless.
                self.log.warning("commit_failed", error=str(exc))
        return resume

    async def _wait_out(self, reason: str) -> None:
        """Mark the outage (readiness false) and back off before the next attempt."""
        self._outage_attempts += 1
        if self.outage is None:
            self.log.error("dependency_unavailable", reason=reason)
        self.outage = reason
        self.metrics.outage.labels(self.consumer.name).set(1)
        self.metrics.outage_retries.labels(self.consumer.name).inc()
        attempt = min(self._outage_attempts, 16)
        await self._sleep(self.policy.delay(attempt))

    async def _sleep(self, seconds: float) -> None:
        """Wait, but wake at once when asked to stop."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            return
