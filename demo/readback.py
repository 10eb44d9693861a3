"""What the demo reads back: customers through the worker's read interface, outputs from Kafka."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Collection, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bootstrap import kafka_consumer, kafka_producer
from settings import Settings

View = dict[str, Any]


class ReadBackError(Exception):
    """The worker did not apply a step in time; the message says what is missing."""


def fetch_customer(base_url: str, customer_id: str, token: str | None = None) -> View | None:
    """Return ``GET /customers/<id>`` as JSON, or None when the customer does not exist (404)."""
    quoted = urllib.parse.quote(customer_id, safe="")
    request = urllib.request.Request(f"{base_url}/customers/{quoted}")  # noqa: S310 - http to our worker
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            body: View = json.loads(response.read())
            return body
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise
    except (urllib.error.URLError, OSError) as exc:
        # The worker went away mid-run: an error the demo reports, not a traceback.
        reason = getattr(exc, "reason", exc)
        raise ReadBackError(f"the worker at {base_url} stopped answering ({reason})") from None


def applied_ids(view: View | None) -> set[str]:
    """Return the ids of the messages the customer's activity shows as applied or refused."""
    if view is None:
        return set()
    return {str(entry["cause"]["id"]) for entry in view.get("activity", [])}


async def wait_applied(
    base_url: str,
    wanted: Mapping[str, Collection[str]],
    *,
    within: float,
    token: str | None = None,
) -> dict[str, View]:
    """Poll the read interface until each customer's activity shows the wanted message ids."""
    deadline = time.monotonic() + within
    views: dict[str, View] = {}
    while True:
        missing: dict[str, set[str]] = {}
        for customer_id, message_ids in wanted.items():
            view = await asyncio.to_thread(fetch_customer, base_url, customer_id, token)
            if view is not None:
                views[customer_id] = view
            left = set(message_ids) - applied_ids(view)
            if left:
                missing[customer_id] = left
        if not missing:
            return views
        if time.monotonic() > deadline:
            described = "; ".join(f"{c}: {sorted(ids)}" for c, ids in missing.items())
            raise ReadBackError(
                f"the worker did not apply these messages within {within:.0f} s: {described}"
            )
        await asyncio.sleep(0.2)


class OutputTail:
    """Reads the output topics from the positions they had when the demo started."""

    def __init__(self, settings: Settings, topics: Collection[str]) -> None:
        self.settings = settings
        self.topics = list(topics)
        self.consumer: AIOKafkaConsumer | None = None
        self.partitions: list[TopicPartition] = []

    async def start(self) -> None:
        """Pin the current end of every output partition before anything is published."""
        producer = kafka_producer(self.settings)
        await producer.start()
        try:
            self.partitions = [
                TopicPartition(t, p)
                for t in self.topics
                for p in sorted(await producer.partitions_for(t))  # waits for the metadata
            ]
        finally:
            await producer.stop()
        self.consumer = kafka_consumer(self.settings, group_id=None)
        await self.consumer.start()
        self.consumer.assign(self.partitions)
        await self.consumer.seek_to_end(*self.partitions)
        for tp in self.partitions:  # resolve the lazy positions now, so nothing is skipped
            await self.consumer.position(tp)

    async def read_to_end(self, customer_ids: Collection[str]) -> list[tuple[str, View]]:
        """Return (topic, message) for these customers, up to the current end of each topic."""
        assert self.consumer is not None, "start() first"
        ends = await self.consumer.end_offsets(self.partitions)
        found: list[tuple[str, View]] = []
        wanted = set(customer_ids)
        while not await self._reached(ends):
            batches = await self.consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    message = json.loads(record.value or b"{}")
                    if message.get("customer_id") in wanted:
                        found.append((tp.topic, message))
        return found

    async def _reached(self, ends: Mapping[TopicPartition, int]) -> bool:
        assert self.consumer is not None
        for tp, end in ends.items():
            if await self.consumer.position(tp) < end:
                return False
        return True

    async def stop(self) -> None:
        """Close the consumer."""
        if self.consumer is not None:
            await self.consumer.stop()
