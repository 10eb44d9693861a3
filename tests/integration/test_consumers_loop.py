"""The shared consume loop on real Kafka: a failing consumer never stops the stream."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from pathlib import Path

import bootstrap
from consumers.loop import DONE, ConsumeLoop, Item, Outcome, RetryPolicy
from consumers.metrics import ConsumerMetrics
from settings import Settings
from tests.integration.consumers_support import isolated, publish, read_topic
from tests.integration.waiting import eventually
from topics import names
from topics.admin import ensure_topics
from topics.names import Topics


class Fussy:
    """A consumer that crashes on one customer's messages and records the others."""

    name = "fussy"
    topics: tuple[str, ...] = (names.TIER_CHANGES,)
    types: frozenset[str] = frozenset({"tier.changed"})

    def __init__(self) -> None:
        self.done: list[str] = []
        self.calls = 0

    async def ready(self) -> bool:
        return True

    async def process(self, items: Sequence[Item]) -> list[Outcome]:
        self.calls += 1
        if any(item.envelope.customer_id == "poison" for item in items):
            raise ZeroDivisionError("a bug in the consumer")
        self.done += [item.envelope.id for item in items]
        return [DONE] * len(items)


def _message(message_id: str, customer: str) -> dict:
    return {
        "id": message_id,
        "type": "tier.changed",
        "customer_id": customer,
        "occurred_at": "2026-12-01T10:00:00+00:00",
        "data": {},
    }


async def test_a_crashing_consumer_dead_letters_the_batch_and_goes_on(
    stack: Settings, unique: str, tmp_path: Path
) -> None:
    settings = isolated(stack, unique, tmp_path)
    topics = Topics(settings.topic_namespace)
    await ensure_topics(
        settings.kafka_bootstrap,
        settings.topic_partitions,
        topics=topics.all,
        same_count=topics.inputs,
    )
    await publish(settings, names.TIER_CHANGES, [_message(f"p-{unique}", "poison")])
    await publish(settings, names.TIER_CHANGES, [b := _message(f"ok-{unique}", "fine")])
    await publish(settings, names.TIER_CHANGES, [{"not": "an envelope"} | {"customer_id": "x"}])
    consumer = Fussy()
    kafka = bootstrap.kafka_consumer(
        settings, topics.tier_changes, group_id=ConsumeLoop.group_id(topics, "fussy")
    )
    producer = bootstrap.kafka_producer(settings)
    await kafka.start()
    await producer.start()
    loop = ConsumeLoop(
        consumer,
        kafka=kafka,
        producer=producer,
        topics=topics,
        policy=RetryPolicy(max_attempts=3, base=0.01, cap=0.05, rng=random.Random(1)),
        metrics=ConsumerMetrics(),
    )
    task = asyncio.create_task(loop.run())
    try:

        async def letters() -> bool:
            return (
                len(await read_topic(settings, names.DEAD_LETTER)) >= 2 and b["id"] in consumer.done
            )

        await eventually(letters, within=60, what="two dead letters and the good message")
    finally:
        loop.stop()
        await task
        await kafka.stop()
        await producer.stop()
    by_code = {
        letter["error_code"]: letter for letter in await read_topic(settings, names.DEAD_LETTER)
    }
    assert set(by_code) == {"retries_exhausted", "invalid_message"}
    assert "ZeroDivisionError" in by_code["retries_exhausted"]["error_message"]
    assert json.loads(by_code["retries_exhausted"]["value"])["id"] == f"p-{unique}"
