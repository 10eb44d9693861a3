"""The repository contract on MongoDB (the local MongoDB-compatible server), plus what only
MongoDB can show: indexes created idempotently, and activity a crash kept from its collection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from stack.mongo import MongoService
from store.indexes import ACTIVITY, CUSTOMERS, INDEXES, ensure_indexes
from store.mongo import MongoCustomerRepository
from store.repository import ActivityRecord, CustomerWrite
from tests.store_contract import (
    HOT_ORDERS,
    CustomerRepositoryContract,
    activity,
    create,
    customer,
    load,
    new_id,
)


@pytest.fixture(scope="module")
async def client(mongo_service: MongoService) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    """A client created in the session loop, closed after the module."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_service.uri, tz_aware=True, serverSelectionTimeoutMS=5000
    )
    yield client
    await client.close()


@pytest.fixture(scope="module")
async def repo(client: AsyncMongoClient[dict[str, Any]]) -> AsyncIterator[MongoCustomerRepository]:
    """A repository on a database unique to this test run, dropped afterwards."""
    name = f"test_store_{new_id('run')}"
    db = client[name]
    await ensure_indexes(db)
    yield MongoCustomerRepository(db, hot_orders=HOT_ORDERS, load_chunk=50)
    await client.drop_database(name)


class TestMongoRepository(CustomerRepositoryContract):
    """The contract, on MongoDB."""


async def test_indexes_are_created_once_and_again_without_error(
    repo: MongoCustomerRepository,
) -> None:
    await ensure_indexes(repo.db)

    for collection, models in INDEXES.items():
        names = set((await repo.db[collection].index_information()).keys())
        assert {m.document["name"] for m in models} <= names
    info = await repo.db[CUSTOMERS].index_information()
    assert info["email_unique"]["unique"] is True


async def test_activity_a_crash_kept_out_of_its_collection_is_recorded_on_the_next_load(
    repo: MongoCustomerRepository,
) -> None:
    cid = new_id()
    loaded = await create(repo, customer(cid))
    entries = (ActivityRecord(activity("a1")), ActivityRecord(activity("a2", minutes=1)))
    result = await repo.save_batch(
        [CustomerWrite(state=loaded.state, loaded=loaded, activity=entries)]
    )
    assert result.saved == {cid}
    # The crash: the customer update landed, the activity insert after it did not.
    await repo.db[ACTIVITY].delete_many({"customer_id": cid})
    assert (await repo.activity(cid)).entries == ()

    await load(repo, cid)

    assert [e.activity_id for e in (await repo.activity(cid)).entries] == ["a2", "a1"]
