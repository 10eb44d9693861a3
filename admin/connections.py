"""Connections the admin tooling opens: the customer store, batch records and a producer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from admin.batches import BATCHES_COLLECTION, MongoBatchRecords
from bootstrap import kafka_producer
from client_options import kafka_options
from program_file import load_program
from settings import Settings
from store.mongo import MongoCustomerRepository, open_repository
from topics.admin import ensure_namespace_topics
from topics.names import Topics

IMPORT_PRODUCER: dict[str, Any] = {"linger_ms": 10, "max_batch_size": 512 * 1024}
"""Producer settings of admin commands and imports: fuller batches for long streams."""


@dataclass
class AdminSession:
    """What one admin command works with; ``producer`` is None when it publishes nothing."""

    repository: MongoCustomerRepository
    batches: MongoBatchRecords
    producer: AIOKafkaProducer | None
    topics: Topics


@asynccontextmanager
async def admin_session(settings: Settings, *, publish: bool) -> AsyncIterator[AdminSession]:
    """Open the store (and, to publish, check the topics and start a producer); close after."""
    topics = Topics(settings.topic_namespace)
    repository = await open_repository(settings)
    producer: AIOKafkaProducer | None = None
    try:
        batches = MongoBatchRecords(repository.db[BATCHES_COLLECTION])
        if publish:
            # Topics first: sending to a missing topic would auto-create it with the broker's
            # default partition count, which the workers' layout check then refuses.
            await ensure_namespace_topics(
                settings.kafka_bootstrap,
                settings.topic_partitions,
                topics.namespace,
                client_options=kafka_options(settings),
            )
            producer = kafka_producer(settings, **IMPORT_PRODUCER)
            await producer.start()
        yield AdminSession(repository, batches, producer, topics)
    finally:
        if producer is not None:
            await producer.stop()
        await repository.close()


def load_tier_names(settings: Settings) -> tuple[str, ...]:
    """Return the tier names of the program in force (``LOYALTY_PROGRAM_FILE``)."""
    return load_program(settings.program_file).tier_names
