"""The composition root: settings → logging and clients. The one place that wires I/O."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient

from settings import Settings


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
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


def mongo_client(settings: Settings) -> AsyncMongoClient[dict[str, Any]]:
    """Build PyMongo's async client; call inside the running event loop (not at import time)."""
    return AsyncMongoClient(settings.mongo_uri, tz_aware=True, serverSelectionTimeoutMS=10_000)
