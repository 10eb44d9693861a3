"""Integration fixtures: reuse a running local stack, or start it (``up`` is idempotent)."""

from __future__ import annotations

import pytest

from settings import Settings
from stack import manager

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Settings:
    """Make sure Kafka, the MongoDB-compatible server and the SMTP sink answer."""
    manager.up(settings)
    return settings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration as an integration test."""
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
