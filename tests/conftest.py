"""Shared fixtures: settings for the local stack and unique ids that isolate each test."""

from __future__ import annotations

import uuid

import pytest

from settings import Settings, load_settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings from the environment, defaulting to the local stack."""
    return load_settings()


@pytest.fixture
def unique() -> str:
    """A short id unique to this test run, for customers, batches, groups and collections."""
    return uuid.uuid4().hex[:12]
