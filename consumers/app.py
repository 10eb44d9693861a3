"""``loyalty consumers``: build the chosen consumers from settings and run them with the web server.

Each consumer gets its own Kafka consumer group and loop; they share one dead-letter producer,
one MongoDB client and one metrics registry. SIGTERM or SIGINT finishes the batches in flight,
commits them and exits.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Collection, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from pymongo.asynchronous.database import AsyncDatabase

import bootstrap
from client_options import kafka_options
from consumers.analytics import TierChangeAnalytics, TierChangeLog
from consumers.ledger import NotificationLedger
from consumers.loop import ConsumeLoop, Consumer, RetryPolicy
from consumers.metrics import ConsumerMetrics
from consumers.notifier import Contact, CustomerLookup, Notifier
from consumers.rewards import COUPONS_COLLECTION, CouponRegistry, RewardsIssuer, ensure_indexes
from consumers.web import WebServer, build_app
from mail.render import MailRenderer
from mail.smtp import Mailer, SmtpConfig
from program_file import load_program
from settings import Settings
from store.indexes import CUSTOMERS
from topics.admin import SERVICE_BROKER_WAIT, ensure_namespace_topics
from topics.names import Topics
from web_access import check_exposure

log = structlog.get_logger(__name__)

CONSUMER_NAMES = ("rewards", "notifier", "analytics")


def parse_only(value: str | None) -> tuple[str, ...]:
    """Return the consumers named in ``--only`` (all when empty); raise ValueError if unknown."""
    if not value:
        return CONSUMER_NAMES
    chosen = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in CONSUMER_NAMES]
    if unknown or not chosen:
        raise ValueError(
            f"unknown consumer {', '.join(unknown) or value!r}; choose from "
            f"{', '.join(CONSUMER_NAMES)} (comma separated)"
        )
    return tuple(dict.fromkeys(chosen))


def smtp_config(settings: Settings) -> SmtpConfig:
    """Return the SMTP connection settings."""
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        security=settings.smtp_security,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value(),
        timeout=settings.smtp_timeout,
        connections=settings.smtp_connections,
        ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file is not None else None,
    )


_CONTACT_FIELDS = ("customer_id", "email", "first_name", "last_name", "accepts_email", "status")


def customer_lookup(database: AsyncDatabase[dict[str, Any]]) -> CustomerLookup:
    """Return the notifier's view of the customers' current records, read from the store."""
    # ``profile`` holds the readable fields beside the packed state (docs/storage.md); a
    # document stored with a plain ``state`` (older, or written by a test) has them there.
    projection = {f"{part}.{name}": 1 for part in ("profile", "state") for name in _CONTACT_FIELDS}

    async def lookup(customer_ids: Collection[str]) -> Mapping[str, Contact]:
        if not customer_ids:
            return {}
        found: dict[str, Contact] = {}
        cursor = database[CUSTOMERS].find({"_id": {"$in": list(customer_ids)}}, projection)
        async for document in cursor:
            plain = document.get("state")
            state = document.get("profile") or (plain if isinstance(plain, dict) else {})
            found[document["_id"]] = Contact(
                customer_id=document["_id"],
                email=state.get("email"),
                first_name=state.get("first_name"),
                last_name=state.get("last_name"),
                accepts_email=bool(state.get("accepts_email", True)),
                active=state.get("status", "active") == "active",
                forgotten=state.get("status") == "forgotten",
            )
        return found

    return lookup


@dataclass
class Running:
    """What ``start`` built; ``stop`` and ``ready`` act on it."""

    metrics: ConsumerMetrics
    loops: list[ConsumeLoop] = field(default_factory=list)
    registry: CouponRegistry | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def stop(self) -> None:
        """Ask every loop to finish its batch and return."""
        for loop in self.loops:
            loop.stop()

    async def ready(self) -> dict[str, bool]:
        """Return the readiness of each consumer (its loop, Kafka and its own dependencies)."""
        return {loop.consumer.name: await loop.ready() for loop in self.loops}


async def build_consumer(
    name: str,
    settings: Settings,
    database: AsyncDatabase[dict[str, Any]],
    metrics: ConsumerMetrics,
    stack: AsyncExitStack,
) -> Consumer:
    """Build one consumer by name, registering what must be closed on the exit stack."""
    if name == "rewards":
        coupons = database[COUPONS_COLLECTION]
        await ensure_indexes(coupons)
        return RewardsIssuer(CouponRegistry(coupons), metrics)
    if name == "notifier":
        program = load_program(settings.program_file)
        mailer = Mailer(smtp_config(settings))
        stack.push_async_callback(mailer.close)
        return Notifier(
            ledger=NotificationLedger(database),
            customers=customer_lookup(database),
            renderer=MailRenderer(settings.mail_templates_dir),
            mailer=mailer,
            sender=settings.mail_from,
            program_name=program.name,
            currency=program.currency,
            metrics=metrics,
            list_unsubscribe=settings.mail_list_unsubscribe,
        )
    tier_log = TierChangeLog(settings.tier_changes_file)
    await asyncio.to_thread(tier_log.load)
    return TierChangeAnalytics(tier_log, metrics)


@asynccontextmanager
async def serving(
    settings: Settings, names: Iterable[str], *, web: bool = True
) -> AsyncIterator[Running]:
    """Start the consumers (and the web server); on exit stop them and close every client."""
    check_exposure(settings.web_host, settings.web_token())
    topics = Topics(settings.topic_namespace)
    metrics = ConsumerMetrics()
    running = Running(metrics=metrics)
    async with AsyncExitStack() as stack:
        await ensure_namespace_topics(
            settings.kafka_bootstrap,
            settings.topic_partitions,
            topics.namespace,
            client_options=kafka_options(settings),
            within=SERVICE_BROKER_WAIT,
            wait_for_broker=True,  # started while the broker restarts: wait, do not exit
        )
        client = bootstrap.mongo_client(settings)
        stack.push_async_callback(client.close)
        database = client[settings.mongo_database]
        producer = bootstrap.kafka_producer(settings)
        await producer.start()
        stack.push_async_callback(producer.stop)
        policy = RetryPolicy(
            max_attempts=settings.consumer_max_attempts,
            base=settings.consumer_retry_base,
            cap=settings.consumer_retry_max,
        )
        for name in names:
            consumer = await build_consumer(name, settings, database, metrics, stack)
            kafka = bootstrap.kafka_consumer(
                settings,
                *(topics.name(t) for t in consumer.topics),
                group_id=ConsumeLoop.group_id(topics, name),
                max_poll_records=settings.consumer_batch_size,
            )
            await kafka.start()
            stack.push_async_callback(kafka.stop)
            if isinstance(consumer, RewardsIssuer):
                running.registry = consumer.registry
            running.loops.append(
                ConsumeLoop(
                    consumer,
                    kafka=kafka,
                    producer=producer,
                    topics=topics,
                    policy=policy,
                    metrics=metrics,
                    batch_size=settings.consumer_batch_size,
                )
            )
        if web:
            app = build_app(
                registry=running.registry,
                metrics=metrics,
                ready=running.ready,
                token=settings.web_token(),
            )
            server = WebServer(app, settings.web_host, settings.consumers_web_port)
            await server.start()
            stack.push_async_callback(server.stop)
        running.tasks = [asyncio.create_task(loop.run()) for loop in running.loops]
        log.info(
            "consumers_running",
            consumers=[loop.consumer.name for loop in running.loops],
            port=settings.consumers_web_port if web else None,
        )
        try:
            yield running
        finally:
            running.stop()
            await asyncio.gather(*running.tasks, return_exceptions=True)


async def run(settings: Settings, names: Iterable[str]) -> None:
    """Run the consumers until SIGTERM or SIGINT, or until one of them fails."""
    async with serving(settings, names) as running:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, running.stop)
        # A loop that raises ends the process (a supervisor restarts it): nothing is committed
        # past what was finished, so the restart picks up where it failed.
        await asyncio.gather(*running.tasks)
