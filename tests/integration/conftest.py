"""Integration fixtures: reuse a running local stack, or start it (``up`` is idempotent)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeVar

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from admin.benchmark import delete_topics, drop_database
from settings import Settings
from stack import manager
from stack.kafka import KafkaService
from stack.mongo import MongoService
from stack.services import Service
from stack.smtp import SmtpService
from tests.integration.admin_helpers import Isolated, isolated
from topics.names import Topics

pytestmark = pytest.mark.integration

S = TypeVar("S", bound=Service)


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Settings:
    """Make sure Kafka, the MongoDB-compatible server and the SMTP sink answer."""
    manager.up(settings)
    return settings


def started(service: S) -> S:
    """Install and start one service on its own (idempotent); it is left running for reuse."""
    service.install()
    service.start()
    return service


@pytest.fixture(scope="session")
def kafka(settings: Settings) -> Settings:
    """Only the broker (the `stack` fixture also starts MongoDB and SMTP)."""
    started(KafkaService(settings))
    return settings


@pytest.fixture(scope="session")
def mongo_service(settings: Settings) -> MongoService:
    """Only the MongoDB-compatible server."""
    return started(MongoService(settings))


@pytest.fixture(scope="session")
def smtp(settings: Settings) -> SmtpService:
    """Only the SMTP sink."""
    return started(SmtpService(settings))


@pytest.fixture
async def admin(kafka: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    """A Kafka admin client, closed after the test."""
    client = AIOKafkaAdminClient(bootstrap_servers=kafka.kafka_bootstrap)
    await client.start()
    yield client
    await client.close()


@pytest.fixture
async def program(stack: Settings, unique: str) -> AsyncIterator[Isolated]:
    """An import test's own database and topic namespace, dropped and deleted afterwards."""
    isolated_program = isolated(stack, unique)
    yield isolated_program
    settings = isolated_program.settings
    await drop_database(settings, settings.mongo_database)
    await delete_topics(settings, Topics(settings.topic_namespace))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration as an integration test."""
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
