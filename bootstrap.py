"""The composition root: settings → logging and clients. The one place that wires I/O."""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient

from client_options import kafka_options, mongo_options
from models.decide import applied_keys, decide
from models.program import Program
from program_file import load_program
from settings import Settings
from store.repository import CustomerRepository
from topics.names import Topics
from web_access import check_exposure
from workers.batch import DeciderFactory, Pipeline
from workers.fold import Decider
from workers.health import Health, retrying
from workers.metrics import Metrics
from workers.outbox import KafkaPublisher, Publisher
from workers.scheduler import Scheduler
from workers.services import WorkerServices
from workers.web import Probe, build_web


def configure_logging(settings: Settings) -> None:
    """Set up structlog: key=value lines on a terminal, JSON when LOYALTY_LOG_JSON is true."""
    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.log_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stderr)


def kafka_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """Build an idempotent producer (acks=all) for the configured cluster; start it yourself."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "acks": "all",
        "enable_idempotence": True,
        "client_id": "loyalty",
        **kafka_options(settings),
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def kafka_consumer(
    settings: Settings, *topics: str, group_id: str | None, **overrides: Any
) -> AIOKafkaConsumer:
    """Build a consumer with manual commits (commit after the work is durable)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "client_id": "loyalty",
        **kafka_options(settings),
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


def mongo_client(settings: Settings) -> AsyncMongoClient[dict[str, Any]]:
    """Build PyMongo's async client; call inside the running event loop (not at import time)."""
    return AsyncMongoClient(
        settings.mongo_uri,
        tz_aware=True,
        serverSelectionTimeoutMS=10_000,
        **mongo_options(settings),
    )


def utc_now() -> datetime:
    """Return the current time, timezone-aware UTC (the worker's clock)."""
    return datetime.now(UTC)


def decider_factory(settings: Settings, program: Program) -> DeciderFactory:
    """Return a factory binding the program, the code key and one clock reading into decide."""
    code_key = settings.code_key()
    skew = settings.max_future_skew

    def bind(now: datetime) -> Decider:
        return partial(decide, program=program, now=now, code_key=code_key, max_future_skew=skew)

    return bind


async def open_repository(settings: Settings) -> CustomerRepository:
    """Connect the MongoDB repository and create its indexes (idempotent)."""
    from store.mongo import open_repository as open_mongo  # noqa: PLC0415 - only when used

    return await open_mongo(settings)


async def _started_producer(settings: Settings) -> AIOKafkaProducer:
    """Start a producer, closing it again if the cluster does not answer."""
    producer = kafka_producer(settings, linger_ms=5)
    try:
        await producer.start()
    except BaseException:
        await producer.stop()
        raise
    return producer


async def open_worker(
    settings: Settings,
    *,
    repository: CustomerRepository | None = None,
    publisher: Publisher | None = None,
    clock: Callable[[], datetime] = utc_now,
    web: bool = True,
) -> WorkerServices:
    """Build the worker's services from settings; ``repository`` and ``publisher`` injectable.

    What this function opens it also closes (``WorkerServices.close``); injected clients are
    the caller's to close. While MongoDB or Kafka do not answer, it retries with backoff.
    """
    program = load_program(settings.program_file)
    topics = Topics(settings.topic_namespace)
    health, metrics = Health(), Metrics()
    closers: list[Callable[[], Awaitable[object]]] = []
    if repository is None:
        repository = await retrying(
            partial(open_repository, settings),
            what="connect to MongoDB",
            dependency="store",
            health=health,
        )
        closers.append(repository.close)
    if publisher is None:
        producer = await retrying(
            partial(_started_producer, settings),
            what="connect to Kafka",
            dependency="kafka",
            health=health,
        )
        closers.append(producer.stop)
        publisher = KafkaPublisher(producer)
    pipeline = Pipeline(
        repository=repository,
        publisher=publisher,
        topics=topics,
        decider=decider_factory(settings, program),
        applied_keys=applied_keys,
        clock=clock,
        health=health,
        metrics=metrics,
    )
    scheduler = Scheduler(
        pipeline=pipeline,
        repository=repository,
        publisher=publisher,
        topics=topics,
        clock=clock,
        health=health,
        page=settings.scheduler_page,
        park_timeout=settings.park_timeout,
        outbox_grace=settings.outbox_grace,
    )
    token = settings.web_token()
    web_app = None
    if web:
        check_exposure(settings.web_host, token)
        probes: dict[str, Probe] = {
            "store": partial(repository.get, "health-probe"),
            "kafka": publisher.ping,
        }
        web_app = build_web(repository, health, metrics, probes=probes, token=token)
    return WorkerServices(
        repository=repository,
        publisher=publisher,
        pipeline=pipeline,
        scheduler=scheduler,
        health=health,
        metrics=metrics,
        web_app=web_app,
        web_host=settings.web_host,
        web_port=settings.web_port,
        closers=closers,
    )
