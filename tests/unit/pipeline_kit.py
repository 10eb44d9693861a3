"""A worker pipeline on the in-memory store with a recording publisher (no Kafka, no MongoDB)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any

from models.decide import applied_keys, decide
from store.memory import MemoryCustomerRepository
from tests.unit.factories import CODE_KEY, NOW, PROGRAM
from topics.names import Topics
from workers.batch import Pipeline, RawRecord
from workers.fold import Decider
from workers.health import Health
from workers.metrics import Metrics
from workers.outbox import Outgoing

TOPICS = Topics("unit.")


class RecordingPublisher:
    """Keeps every published message; ``fail`` makes the next calls raise (a Kafka outage)."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []
        self.fail = 0

    async def publish(self, messages: Sequence[Outgoing]) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("broker unavailable")
        self.sent.extend(messages)

    async def ping(self) -> None:
        return None

    def on(self, contract_topic: str) -> list[dict[str, Any]]:
        """The JSON values published on one topic (contract name)."""
        name = TOPICS.name(contract_topic)
        return [json.loads(m.value) for m in self.sent if m.topic == name]


class Kit:
    """A pipeline, its store, its publisher and per-topic offset counters."""

    def __init__(self, now: datetime = NOW, publisher: RecordingPublisher | None = None) -> None:
        self.repository = MemoryCustomerRepository()
        self.publisher = publisher if publisher is not None else RecordingPublisher()
        self.metrics = Metrics()
        self.health = Health()
        self.now = now
        self.offsets: dict[tuple[str, int], itertools.count[int]] = {}
        self.pipeline = Pipeline(
            repository=self.repository,
            publisher=self.publisher,
            topics=TOPICS,
            decider=self._decider,
            applied_keys=applied_keys,
            clock=lambda: self.now,
            health=self.health,
            metrics=self.metrics,
        )

    def _decider(self, now: datetime) -> Decider:
        return partial(decide, program=PROGRAM, now=now, code_key=CODE_KEY)

    def record(
        self,
        contract_topic: str,
        value: bytes | dict[str, Any],
        key: str | None = None,
        partition: int = 0,
    ) -> RawRecord:
        """A raw record at the next offset of that topic-partition.

        Keyed by the message's customer id unless ``key`` says otherwise (``c-1`` for a value
        that is not a message).
        """
        counter = self.offsets.setdefault((contract_topic, partition), itertools.count())
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        if key is None:
            customer = value.get("customer_id") if isinstance(value, dict) else None
            key = customer if isinstance(customer, str) else "c-1"
        return RawRecord(TOPICS.name(contract_topic), partition, next(counter), key.encode(), raw)

    async def handle(self, *records: RawRecord) -> None:
        await self.pipeline.handle(list(records))

    def count(self, kind: str, outcome: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "loyalty_events_total", {"type": kind, "outcome": outcome}
        )
        return value or 0.0
