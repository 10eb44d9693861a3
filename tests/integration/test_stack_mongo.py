"""The local MongoDB-compatible server answers like MongoDB for what the store relies on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from stack.mongo import MongoService
from stack.process import read_pid


@pytest.fixture
async def db(mongo_service: MongoService, unique: str) -> AsyncIterator[AsyncDatabase[Any]]:
    """A fresh database on the local server, dropped afterwards; the client lives in the loop."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_service.uri, serverSelectionTimeoutMS=5000
    )
    name = f"test_stack_mongo_{unique}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


async def test_conditional_update_checks_the_version(db: AsyncDatabase[Any]) -> None:
    customers = db["customers"]
    await customers.insert_one({"_id": "c1", "version": 3, "points": 10, "outbox": []})
    update = {
        "$inc": {"points": 5, "version": 1},
        "$set": {"tier": "gold"},
        "$push": {"outbox": {"id": "tier-changed-1"}},
    }

    stale = await customers.update_one({"_id": "c1", "version": 2}, update)
    current = await customers.update_one({"_id": "c1", "version": 3}, update)

    assert stale.matched_count == 0
    assert current.matched_count == 1
    assert current.modified_count == 1
    doc = await customers.find_one({"_id": "c1"})
    assert doc == {
        "_id": "c1",
        "version": 4,
        "points": 15,
        "tier": "gold",
        "outbox": [{"id": "tier-changed-1"}],
    }


async def test_unique_index_violation_raises_duplicate_key(db: AsyncDatabase[Any]) -> None:
    customers = db["customers"]
    await customers.create_index("email", unique=True)
    await customers.insert_one({"_id": "c1", "email": "ada@example.com"})

    with pytest.raises(DuplicateKeyError) as caught:
        await customers.insert_one({"_id": "c2", "email": "ada@example.com"})

    assert caught.value.code == 11000
    assert await customers.count_documents({}) == 1


def test_start_is_idempotent(mongo_service: MongoService) -> None:
    before = read_pid(mongo_service.pid_file)

    mongo_service.start()

    assert before is not None
    assert read_pid(mongo_service.pid_file) == before
    status = mongo_service.status()
    assert status.healthy
    assert status.pid == before
    assert "SecantusDB" in status.detail
