"""Kafka as the destination of import commands: many sends in flight, delivery counted."""

from __future__ import annotations

import asyncio
from functools import partial

from aiokafka import AIOKafkaProducer

from admin.imports import Delivered


class KafkaSink:
    """Send through an idempotent producer without waiting per message; ``flush`` waits."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self._pending: set[asyncio.Future[object]] = set()

    async def send(self, topic: str, key: bytes, value: bytes, delivered: Delivered) -> None:
        """Queue one message; the producer batches it and ``delivered`` reports the outcome."""
        future: asyncio.Future[object] = await self.producer.send(topic, value, key=key)
        self._pending.add(future)
        future.add_done_callback(partial(self._done, delivered))

    def _done(self, delivered: Delivered, result: asyncio.Future[object]) -> None:
        self._pending.discard(result)
        delivered(not result.cancelled() and result.exception() is None)

    async def flush(self) -> None:
        """Wait until every message sent so far is acknowledged or has failed."""
        await self.producer.flush()
        pending = list(self._pending)
        if pending:
            await asyncio.wait(pending)
        await asyncio.sleep(0)  # run the done callbacks scheduled by the last deliveries
