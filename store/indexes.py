"""The store's collections and their indexes, created at start (idempotent).

The email is unique through a normalised field, ``email_key`` (``strip().casefold()``, the
rules' own ``email_key``), not a collation: the rules and the store then compare emails the
same way, a plain equality query uses the index without naming a collation, and it behaves the
same on every MongoDB-compatible server. Customers without an email have no ``email_key`` field
and stay outside the unique index: a sparse index, not a partial one, because the local
MongoDB-compatible server never uses a partial index to answer a query (measured: 100-key
``$in`` lookups at 40-70 keys/s on 5,000 customers with a partial index, 3,000 with a sparse
one), so email lookups and import batch counts would scan the collection.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

CUSTOMERS = "customers"
ID_ARCHIVE = "applied_id_archive"
ORDER_ARCHIVE = "order_archive"
ACTIVITY = "activity"
PARKED = "parked_messages"
LOOKUP = "customer_lookup"
CODES = "reward_codes"
META = "store_meta"
OUTBOX_INDEX = "outbox_pending"
"""Sparse on ``outbox.id``: only customers with unsent outputs (the republish query hints it)."""

INDEXES: dict[str, list[IndexModel]] = {
    CUSTOMERS: [
        IndexModel(
            [("email_key", ASCENDING)], name="email_unique_sparse", unique=True, sparse=True
        ),
        # Sparse on a path inside the array: only customers with unsent outputs are in it.
        IndexModel([("outbox.id", ASCENDING)], name=OUTBOX_INDEX, sparse=True),
    ],
    # Every index above is paid on every state update; these live in the lookup collection,
    # written only when they change (store/mongo_lookup.py).
    LOOKUP: [
        IndexModel([("next_due_at", ASCENDING), ("_id", ASCENDING)], name="next_due"),
        IndexModel([("groups", ASCENDING), ("_id", ASCENDING)], name="groups"),
        IndexModel([("joined_at", DESCENDING), ("_id", DESCENDING)], name="joined_newest_first"),
    ],
    ACTIVITY: [
        IndexModel(
            [("customer_id", ASCENDING), ("at", DESCENDING), ("activity_id", DESCENDING)],
            name="customer_time",
        ),
        IndexModel(
            [("batch_id", ASCENDING), ("row", ASCENDING)], name="import_batch_sparse", sparse=True
        ),
    ],
    PARKED: [
        IndexModel(
            [("customer_id", ASCENDING), ("parked_at", ASCENDING), ("seq", ASCENDING)],
            name="customer_arrival",
        ),
        IndexModel([("parked_at", ASCENDING), ("seq", ASCENDING)], name="parked_at"),
    ],
    # An archive document is a chunk of ids or orders, found by the digests of what it holds.
    ID_ARCHIVE: [IndexModel([("keys", ASCENDING)], name="archive_keys")],
    ORDER_ARCHIVE: [IndexModel([("keys", ASCENDING)], name="archive_keys")],
    # Reward codes are read and written by ``_id`` only (a digest).
}

_CONFLICTS = frozenset({85, 86})  # IndexOptionsConflict, IndexKeySpecsConflict


class IndexConflictError(Exception):
    """An index exists with the same name and different keys or options."""


async def ensure_indexes(db: AsyncDatabase[dict[str, Any]]) -> None:
    """Create every index the store relies on; existing identical ones are left alone."""
    for collection, models in INDEXES.items():
        try:
            await db[collection].create_indexes(models)
        except OperationFailure as exc:
            if exc.code in _CONFLICTS:
                raise IndexConflictError(
                    f"database {db.name!r}, collection {collection!r}: an index exists with "
                    f"the same name and other options ({(exc.details or {}).get('errmsg', exc)}); "
                    "drop it (db.collection.dropIndex(name)) and start again"
                ) from exc
            raise
    await _archive_keys(db)


async def _archive_keys(db: AsyncDatabase[dict[str, Any]]) -> None:
    """Give archive documents written before chunks (one id or order each) their ``keys``.

    They were found by ``_id``, the digest chunks now list in ``keys``; done once per database
    (a marker in ``store_meta``), so a start never scans the archives again.
    """
    marker = {"_id": "archive_keys"}
    if await db[META].find_one(marker) is not None:
        return
    for collection in (ID_ARCHIVE, ORDER_ARCHIVE):
        await db[collection].update_many(
            {"keys": {"$exists": False}}, [{"$set": {"keys": ["$_id"]}}]
        )
    await db[META].update_one(marker, {"$set": {"done": True}}, upsert=True)
