"""Integration fixtures: reuse a running local stack, or start it (``up`` is idempotent)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from settings import Settings
from stack import manager
from stack.kafka import KafkaService

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Settings:
    """Make sure Kafka, the MongoDB-compatible server and the SMTP sink answer."""
    manager.up(settings)
    return settings


@pytest.fixture(scope="session")
def kafka(settings: Settings) -> Settings:
    """Only the broker (the `stack` fixture also starts MongoDB and SMTP)."""
    service = KafkaService(settings)
    service.install()
    service.start()
    return settings


@pytest.fixture
async def admin(kafka: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    """A Kafka admin client, closed after the test."""
    client = AIOKafkaAdminClient(bootstrap_servers=kafka.kafka_bootstrap)
    await client.start()
    yield client
    await client.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration as an integration test."""
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
