"""Load for ``loyalty bench pipeline``: order events, customers seeded through the rules, topics.

Seeding goes straight into the store through the rules and the repository (the worker's own
pure fold and ``save_batch``), not through Kafka, so long histories are cheap to set up and the
documents look exactly as the worker leaves them.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from aiokafka import TopicPartition

from bootstrap import kafka_consumer, kafka_producer
from models.decide import applied_keys, decide
from models.messages import InputMessage
from models.program import Program
from models.state import CustomerState
from settings import Settings
from store.repository import CustomerRepository
from topics.codec import parse_message
from topics.names import Topics
from workers.batch import load_requests
from workers.fold import Record, decode, fold

SEED_TOPIC = "bench.seed"
"""The offsets of seeded messages are recorded under this name, apart from the real topics."""
SEED_CHUNK = 250
"""Customers per seeding round trip."""
_NO_NAMESPACE = Topics("")

Envelope = dict[str, Any]


def order_paid(customer_id: str, number: int, at: datetime, total: int, currency: str) -> Envelope:
    """Return an ``order.paid`` envelope of ``total`` currency units with one coffee line."""
    return {
        "id": f"{customer_id}:paid:{number}",
        "type": "order.paid",
        "customer_id": customer_id,
        "occurred_at": at.isoformat(),
        "source": "storefront",
        "data": {
            "order_id": f"{customer_id}-{number}",
            "total": f"{total}.00",
            "currency": currency,
            "items": [
                {"sku": "beans", "quantity": 1, "unit_price": f"{total - 4}.00"},
                {"sku": "latte", "quantity": 1, "unit_price": "4.00", "categories": ["coffee"]},
            ],
        },
    }


def coffee_order(order_id: str, beans: int, lattes: int, currency: str) -> tuple[Envelope, Decimal]:
    """Return an ``order.paid`` payload (beans at ``beans``, ``lattes`` at 4.00) and its total."""
    items: list[dict[str, Any]] = [
        {"sku": "beans", "quantity": 1, "unit_price": f"{beans}.00", "categories": ["beans"]}
    ]
    if lattes:
        items.append(
            {"sku": "latte", "quantity": lattes, "unit_price": "4.00", "categories": ["coffee"]}
        )
    total = Decimal(beans + 4 * lattes)
    data = {"order_id": order_id, "total": f"{total}.00", "currency": currency, "items": items}
    return data, total


def signup(customer_id: str, at: datetime) -> Envelope:
    """Return the ``customer.upserted`` that creates a bench customer."""
    return {
        "id": f"{customer_id}:signup",
        "type": "customer.upserted",
        "customer_id": customer_id,
        "occurred_at": at.isoformat(),
        "data": {"email": f"{customer_id}@bench.example", "first_name": "Bench"},
    }


def orders_over(
    customer_ids: Sequence[str], events: int, start: datetime, currency: str, *, seed: int = 7
) -> list[Envelope]:
    """Return ``events`` orders spread at random over the customers, in time order."""
    rng = random.Random(seed)  # noqa: S311 - reproducible load, not a secret
    counts: dict[str, int] = {}
    out = []
    for n in range(events):
        customer_id = customer_ids[rng.randrange(len(customer_ids))]
        counts[customer_id] = counts.get(customer_id, 0) + 1
        at = start + timedelta(seconds=n)
        out.append(order_paid(customer_id, counts[customer_id], at, rng.randint(8, 60), currency))
    return out


@dataclass
class Seeder:
    """Writes customers and their histories into a store through the rules."""

    repository: CustomerRepository
    program: Program
    code_key: str
    now: datetime
    offset: int = 0

    def rules(self, state: CustomerState | None, message: InputMessage) -> Any:
        return decide(state, message, self.program, self.now, code_key=self.code_key)

    def records(self, envelopes: Sequence[Envelope]) -> list[Record]:
        """Decode envelopes as records of the seed topic, at increasing offsets."""
        records = []
        for envelope in envelopes:
            self.offset += 1
            value = json.dumps(envelope).encode()
            key = str(envelope["customer_id"]).encode()
            records.append(
                decode(SEED_TOPIC, 0, self.offset, key, value, topics=_NO_NAMESPACE, routed=False)
            )
        return records

    async def apply(self, envelopes: Sequence[Envelope]) -> None:
        """Load the customers concerned, fold the envelopes in order and save in one batch."""
        records = self.records(envelopes)
        requests = load_requests(records, applied_keys)
        loaded = await self.repository.load_many(requests)
        result = fold(
            records,
            loaded,
            decide=self.rules,
            applied_keys=applied_keys,
            email_owners={},
            now=self.now,
        )
        lost = [o for o in result.outcomes if o.kind in {"dead_letter", "parked", "waiting"}]
        if lost:  # the seed would be silently short: the phases after it would wait forever
            first = lost[0]
            raise RuntimeError(
                f"seeding could not apply {len(lost)} of {len(records)} messages; the first "
                f"was {first.kind}: {first.code} {first.reason or ''}"
            )
        saved = await self.repository.save_batch(result.writes)
        if saved.conflicts or saved.email_taken:
            raise RuntimeError(
                f"seeding conflicted for {len(saved.conflicts) + len(saved.email_taken)} "
                "customers: is a worker writing to the bench database?"
            )
        sent = {w.customer_id: [e.output_id for e in w.outbox] for w in result.writes if w.outbox}
        if sent:
            await self.repository.mark_sent(sent)  # seeded outputs are history, not news

    async def customers(self, customer_ids: Sequence[str], at: datetime) -> None:
        """Create these customers."""
        for start in range(0, len(customer_ids), SEED_CHUNK):
            part = customer_ids[start : start + SEED_CHUNK]
            await self.apply([signup(c, at) for c in part])

    async def history(
        self, customer_ids: Sequence[str], orders: int, start: datetime, *, per_round: int = 100
    ) -> None:
        """Give each customer ``orders`` paid orders, ``per_round`` per save, oldest first."""
        currency = self.program.currency
        chunk = max(1, SEED_CHUNK // max(1, per_round) * 4)
        for first in range(0, orders, per_round):
            numbers = range(first + 1, min(orders, first + per_round) + 1)
            for begin in range(0, len(customer_ids), chunk):
                part = customer_ids[begin : begin + chunk]
                envelopes = [
                    order_paid(c, n, start + timedelta(hours=n), 10, currency)
                    for c in part
                    for n in numbers
                ]
                await self.apply(envelopes)


async def produce(settings: Settings, topic: str, envelopes: Sequence[Envelope]) -> float:
    """Publish envelopes keyed by customer; return the produce rate in messages/s."""
    producer = kafka_producer(settings, linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        started = time.perf_counter()
        pending = []
        for envelope in envelopes:
            value = json.dumps(envelope).encode()
            key = str(envelope["customer_id"]).encode()
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 5000:
                for future in pending:
                    await future
                pending = []
        for future in pending:
            await future
        return len(envelopes) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def consume_rates(settings: Settings, topic: str, expected: int) -> tuple[float, float]:
    """Read the topic from the start: return (raw records/s, records/s parsed into envelopes)."""
    producer = kafka_producer(settings)
    await producer.start()
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(await producer.partitions_for(topic))
        ]
    finally:
        await producer.stop()
    values: list[bytes] = []
    consumer = kafka_consumer(settings, group_id=None, max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        started = time.perf_counter()
        while len(values) < expected:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batches.values():
                values.extend(r.value or b"" for r in records)
        raw = len(values) / (time.perf_counter() - started)
    finally:
        await consumer.stop()
    started = time.perf_counter()
    for value in values:
        parse_message(value)
    parsed_seconds = time.perf_counter() - started
    # Parsing runs after the reads, so the parsed rate is consume and parse in sequence.
    parsed = len(values) / (len(values) / raw + parsed_seconds)
    return raw, parsed
