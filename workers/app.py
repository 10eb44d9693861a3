"""The faust app: one stateless agent per input topic, the leader's scheduler timer.

No faust tables (docs/adr/0001-local-stack.md): customer state lives in the store. Each agent
takes batches (``noack_take``: nothing is acknowledged until the pipeline returned, i.e. until
the batch is durable; faust would otherwise acknowledge on error or on shutdown) with
concurrency 1, so one customer's messages on a topic are handled in offset order. On SIGTERM
faust stops the consumer first, waits for the batch in flight to be acknowledged, commits,
then stops the runtime (web server, store and producer).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import faust
import mode
import structlog

from client_options import faust_credentials
from settings import Settings
from topics import names
from topics.names import Topics
from workers.batch import RawRecord
from workers.services import WorkerServices

log = structlog.get_logger("loyalty.worker")

AGENTS: dict[str, str] = {
    "customers": names.CUSTOMERS,
    "orders": names.ORDERS,
    "adjustments": names.ADJUSTMENTS,
    "tier-commands": names.TIER_COMMANDS,
}
"""``loyalty worker --only`` names -> the input topic each agent consumes."""


def group_id(topics: Topics) -> str:
    """Return the consumer group (faust app id) of the worker under a namespace."""
    return f"{topics.namespace}loyalty-worker"


class Runtime(mode.Service):
    """Opens the worker's clients inside the running loop and closes them on stop."""

    def __init__(self, opener: Callable[[], Awaitable[WorkerServices]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._opener = opener
        self._ready = asyncio.Event()
        self._services: WorkerServices | None = None

    @property
    def services(self) -> WorkerServices:
        """The opened services (only after ``wait_ready``)."""
        if self._services is None:
            raise RuntimeError("worker services are not open yet")
        return self._services

    async def on_start(self) -> None:
        """Open clients, start the web server, publish any outbox backlog."""
        self._services = await self._opener()
        await self._services.start()
        self._ready.set()

    async def on_stop(self) -> None:
        """Close the web server and the clients."""
        if self._services is not None:
            await self._services.close()

    async def wait_ready(self) -> WorkerServices:
        """Wait until the services are open and return them."""
        await self._ready.wait()
        return self.services


def build_app(settings: Settings, runtime: Runtime, only: Sequence[str] = ()) -> faust.App:
    """Return the faust app with the selected agents (all by default) and the scheduler."""
    topics = Topics(settings.topic_namespace)
    app = faust.App(
        group_id(topics),
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=faust_credentials(settings),
        web_enabled=False,
        autodiscover=False,
        topic_partitions=settings.topic_partitions,
        # The input topics exist already (the CLI checks their layout first); faust still needs
        # to declare its own leader-election topic, or no worker ever becomes the leader.
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        stream_wait_empty=True,
    )
    for agent_name in only or tuple(AGENTS):
        topic = app.topic(
            topics.name(AGENTS[agent_name]),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )
        app.agent(topic, name=f"loyalty.{agent_name}", concurrency=1)(
            _agent(runtime, settings.worker_batch_size, settings.worker_batch_within)
        )

    async def scheduler() -> None:
        services = await runtime.wait_ready()
        try:
            await services.scheduler.run_once()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduler run failed; the next run tries again")

    app.timer(settings.scheduler_interval, on_leader=True, name="loyalty.scheduler")(scheduler)
    return app


def _agent(runtime: Runtime, size: int, within: float) -> Callable[[Any], Awaitable[None]]:
    """Return an agent body: take a batch, run it through the pipeline, then acknowledge it."""

    async def consume(stream: Any) -> None:
        services = await runtime.wait_ready()
        batches: AsyncIterator[list[Any]] = stream.noack_take(size, within)
        async for events in batches:
            raw = [
                RawRecord(
                    topic=e.message.topic,
                    partition=e.message.partition,
                    offset=e.message.offset,
                    key=e.message.key,
                    value=e.message.value,
                )
                for e in events
            ]
            # handle() returns only once the batch is durable and never raises but for
            # cancellation, in which case nothing below runs and the batch is redelivered.
            await services.pipeline.handle(raw)
            for event in events:
                await stream.ack(event)

    return consume
