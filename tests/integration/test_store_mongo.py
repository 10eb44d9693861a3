"""The repository contract on MongoDB (the local MongoDB-compatible server), plus what only
MongoDB can show: indexes created idempotently, and activity a crash kept from its collection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from models.state import APPLIED_IDS_LIMIT, PointsLot, RewardGrant
from stack.mongo import MongoService
from store import documents as docs
from store.documents import CorruptDocumentError
from store.indexes import ACTIVITY, CODES, CUSTOMERS, INDEXES, LOOKUP, META, ensure_indexes
from store.mongo import MongoCustomerRepository
from store.repository import ActivityRecord, CustomerWrite, DueCustomer, LoadRequest
from tests.store_contract import (
    CAUSE,
    HOT_ORDERS,
    ID_SLACK,
    ORDER_SLACK,
    T0,
    CustomerRepositoryContract,
    activity,
    create,
    customer,
    load,
    new_id,
    order,
    update,
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
    yield MongoCustomerRepository(
        db, hot_orders=HOT_ORDERS, order_slack=0, id_slack=0, load_chunk=50
    )
    await client.drop_database(name)


@pytest.fixture
def slack_repo(repo: MongoCustomerRepository) -> MongoCustomerRepository:
    """The same database, archiving by water marks."""
    return MongoCustomerRepository(
        repo.db, hot_orders=HOT_ORDERS, order_slack=ORDER_SLACK, id_slack=ID_SLACK, load_chunk=50
    )


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
    assert info["email_unique_sparse"]["unique"] is True
    assert info["email_unique_sparse"]["sparse"] is True


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

    await load(restarted(repo), cid)

    assert [e.activity_id for e in (await repo.activity(cid)).entries] == ["a2", "a1"]


async def test_a_lookup_a_crash_kept_from_its_collection_is_written_on_the_next_load(
    repo: MongoCustomerRepository,
) -> None:
    cid, group = new_id(), new_id("group")
    due = datetime(1980, 5, 1, tzinfo=UTC)
    lot = PointsLot(lot_id="l", amount=1, original=1, earned_at=due, expires_at=due, cause=CAUSE)
    loaded = await create(repo, customer(cid))
    state = loaded.state.model_copy(update={"groups": (group,), "points_lots": (lot,)})
    assert (await repo.save_batch([CustomerWrite(state=state, loaded=loaded)])).saved == {cid}
    # The crash: the customer update landed, the lookup write after it did not.
    await repo.db[LOOKUP].update_one({"_id": cid}, {"$set": {"groups": [], "next_due_at": None}})
    assert [m async for m in repo.group_members(group)] == []

    after_restart = restarted(repo)
    await load(after_restart, cid)

    assert [m async for m in repo.group_members(group)] == [cid]
    assert DueCustomer(due_at=due, customer_id=cid) in await repo.due_customers(due)


async def test_a_code_a_crash_kept_from_its_collection_is_written_on_the_next_load(
    repo: MongoCustomerRepository,
) -> None:
    cid, code = new_id(), new_id("CODE").upper()
    grant = RewardGrant(
        grant_id="g-1",
        reward_id="free-coffee",
        code=code,
        status="issued",
        origin="card",
        granted_at=T0,
        cause=CAUSE,
    )
    loaded = await create(repo, customer(cid))
    state = loaded.state.model_copy(update={"rewards": (grant,)})
    assert (await repo.save_batch([CustomerWrite(state=state, loaded=loaded)])).saved == {cid}
    # The crash: the customer update landed, the code insert after it did not.
    await repo.db[CODES].delete_many({"customer_id": cid})
    assert await repo.customer_id_by_code(code) is None

    await load(restarted(repo), cid)

    assert await repo.customer_id_by_code(code) == cid


async def test_a_lookup_is_never_replaced_by_an_older_version(
    repo: MongoCustomerRepository,
) -> None:
    cid, group = new_id(), new_id("group")
    stale = await create(repo, customer(cid))
    newer = await update(repo, stale, stale.state.model_copy(update={"groups": (group,)}))

    await repo.lookup.write([(cid, stale.version, docs.lookup_of(stale.state))])

    assert newer.version == 2
    assert [m async for m in repo.group_members(group)] == [cid]


def restarted(repo: MongoCustomerRepository) -> MongoCustomerRepository:
    """Return a repository on the same database as a new process would have it."""
    return MongoCustomerRepository(
        repo.db,
        hot_orders=repo.hot_orders,
        order_slack=repo.order_slack,
        id_slack=repo.id_slack,
        load_chunk=50,
    )


async def test_a_document_written_outside_the_store_is_reported_not_misread(
    repo: MongoCustomerRepository,
) -> None:
    cid = new_id()
    state = customer(cid)
    await repo.db[CUSTOMERS].insert_one({"_id": cid, "state": state.model_dump(mode="json")})

    with pytest.raises(CorruptDocumentError, match="no version"):
        await repo.load_many([LoadRequest(customer_id=cid)])


async def test_a_spill_archives_one_document_per_customer_and_kind(
    slack_repo: MongoCustomerRepository,
) -> None:
    repo = slack_repo
    cid = new_id()
    orders = tuple(order(f"o{n}", days=n) for n in range(HOT_ORDERS + ORDER_SLACK + 1))
    ring = tuple(f"m{n}" for n in range(APPLIED_IDS_LIMIT + ID_SLACK + 1))
    loaded = await create(repo, customer(cid, orders=orders, applied_ids=ring))

    await update(
        repo, loaded, loaded.state.model_copy(update={"applied_ids": ring[-APPLIED_IDS_LIMIT:]})
    )

    id_chunks = await repo.archives.id_archive.find({"customer_id": cid}).to_list()
    order_chunks = await repo.archives.order_archive.find({"customer_id": cid}).to_list()
    assert [len(c["keys"]) for c in id_chunks] == [ID_SLACK + 1]
    assert [len(c["records"]) for c in order_chunks] == [ORDER_SLACK + 1]


async def test_archive_documents_from_before_chunks_are_still_found(
    repo: MongoCustomerRepository,
) -> None:
    cid = new_id()
    created = await create(repo, customer(cid, applied_ids=("m1",), orders=(order("o9"),)))
    await repo.customers.update_one(
        {"_id": cid}, {"$set": {"archived_ids": True, "archived_orders": True}}
    )
    await repo.archives.id_archive.insert_one(
        {"_id": docs.pair_id(cid, "m0"), "customer_id": cid, "message_id": "m0"}
    )
    old = order("o0").model_dump(mode="json")
    await repo.archives.order_archive.insert_one(
        {"_id": docs.pair_id(cid, "o0"), "customer_id": cid, "version": 1, "record": old}
    )
    await repo.db[META].delete_one({"_id": "archive_keys"})

    await ensure_indexes(repo.db)
    found = await load(repo, cid, message_ids=frozenset({"m0"}), order_ids=frozenset({"o0"}))

    assert created.version == found.version
    assert found.known_ids == {"m0"}
    assert found.state.order("o0") == order("o0")
