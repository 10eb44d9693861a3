"""The customer lookup collection: due time, groups and grant codes, indexed apart from the state.

Every secondary index on ``customers`` is paid on every state update (on the local server each
one costs as much as the update itself), while these values change far less often than the
state. So they live in ``customer_lookup`` (one small document per customer, with the indexes),
written after the customer update only when they changed, and only over an older copy. The
customer document keeps its own copy (``lookup``), so a load can tell a lookup document that a
crash left behind and write it again (docs/storage.md, "Order of writes").
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.errors import BulkWriteError

from models.state import CustomerState
from store import documents as docs
from store.mongo_log import (
    DUPLICATE_KEY,
    ID_CHUNK,
    Coll,
    chunks,
    insert_ignoring_duplicates,
    page_after,
)
from store.repository import CustomerFilter, DueCustomer, ListCursor, normalize_email

STATE_CACHE_LIMIT = 5_000
"""States kept after a save; a miss costs one unpack."""

SYNCED_LIMIT = 200_000
"""Customers whose activity and lookup this process knows to be written (an LRU)."""


class Synced:
    """Customer versions whose after-update writes (activity, lookup) this process completed.

    A load checks those writes only for versions not listed here: after a restart, or for a
    version another process wrote. Forgetting an entry only costs one check.
    """

    def __init__(self, limit: int = SYNCED_LIMIT) -> None:
        self.limit = limit
        self._versions: OrderedDict[str, int] = OrderedDict()

    def add(self, customer_id: str, version: int) -> None:
        """Remember that this version's writes are complete."""
        self._versions[customer_id] = version
        self._versions.move_to_end(customer_id)
        while len(self._versions) > self.limit:
            self._versions.popitem(last=False)

    def has(self, customer_id: str, version: int) -> bool:
        """Whether this version's writes are known complete."""
        return self._versions.get(customer_id) == version


class StateCache:
    """The states this process last saved, by customer and version (an LRU).

    Reading a packed state back costs its JSON validation (about 12 ms for a customer with
    1,000 orders here); a load that finds the version this process wrote reuses the state
    instead. A state is immutable, so sharing it is safe.
    """

    def __init__(self, limit: int = STATE_CACHE_LIMIT) -> None:
        self.limit = limit
        self._states: OrderedDict[str, tuple[int, CustomerState]] = OrderedDict()

    def put(self, customer_id: str, version: int, state: CustomerState) -> None:
        """Remember the state written as this version."""
        self._states[customer_id] = (version, state)
        self._states.move_to_end(customer_id)
        while len(self._states) > self.limit:
            self._states.popitem(last=False)

    def get(self, customer_id: str, version: int) -> CustomerState | None:
        """Return the state of this version, if this process wrote it and still holds it."""
        held = self._states.get(customer_id)
        return held[1] if held is not None and held[0] == version else None


class CustomerLookup:
    """``customer_lookup``: ``{_id, version, next_due_at, groups, codes}`` per customer."""

    def __init__(self, collection: Coll) -> None:
        self.collection = collection

    async def write(self, rows: Sequence[tuple[str, int, docs.Document]]) -> None:
        """Write (customer id, version, lookup) rows, never over a newer version's copy."""
        ops = [
            UpdateOne(
                # The same version may be written again: a repair of a lagging copy.
                {"_id": cid, "version": {"$lte": version}},
                {"$set": {"version": version, **lookup}},
                upsert=True,
            )
            for cid, version, lookup in rows
        ]
        if not ops:
            return
        try:
            await self.collection.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            # A duplicate key: a newer version's copy is there already (the filter missed).
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise

    async def repair(self, customers: Sequence[docs.Document]) -> None:
        """Write again the lookup of customers whose lookup document lags their state."""
        if not customers:
            return
        held: dict[str, docs.Document] = {}
        ids = [c["_id"] for c in customers]
        for part in chunks(ids, ID_CHUNK):
            async for found in self.collection.find({"_id": {"$in": list(part)}}):
                held[found["_id"]] = found
        stale = []
        for doc in customers:
            row = held.get(doc["_id"])
            lookup = docs.lookup_in(doc)
            if row is None or any(row.get(k) != v for k, v in lookup.items()):
                stale.append((doc["_id"], int(doc["version"]), lookup))
        await self.write(stale)

    async def due(self, at: datetime, after: DueCustomer | None, limit: int) -> list[DueCustomer]:
        """Return customers due at or before ``at`` by (due time, id), after ``after``."""
        rows = await page_after(
            self.collection,
            {"next_due_at": {"$lte": at}},
            ("next_due_at", "_id"),
            None if after is None else (after.due_at, after.customer_id),
            limit,
            projection={"next_due_at": 1},
        )
        return [DueCustomer(due_at=d["next_due_at"], customer_id=d["_id"]) for d in rows]

    async def members(self, group_id: str) -> AsyncIterator[str]:
        """Stream the ids of a group's members from a cursor, by id."""
        cursor = (
            self.collection.find({"groups": group_id}, {"_id": 1})
            .sort([("groups", ASCENDING), ("_id", ASCENDING)])
            .batch_size(500)
        )
        async for doc in cursor:
            yield doc["_id"]

    async def newest_first(
        self, where: CustomerFilter, after: ListCursor | None, limit: int
    ) -> list[str]:
        """Return the ids of one page of customers, most recently joined first."""
        query: dict[str, Any] = {}
        if where.tier is not None:
            query["tier"] = where.tier
        if where.status is not None:
            query["status"] = where.status
        if where.email_contains:
            # Escaped: the fragment is matched as text, never as a pattern the user wrote.
            query["email_key"] = {"$regex": re.escape(normalize_email(where.email_contains))}
        rows = await page_after(
            self.collection,
            query,
            ("joined_at", "_id"),
            None if after is None else (after.joined_at, after.customer_id),
            limit,
            descending=True,
            projection={"_id": 1},
        )
        return [doc["_id"] for doc in rows]


class RewardCodes:
    """``reward_codes``: one ``{_id, code, customer_id}`` per grant code, inserted once."""

    def __init__(self, collection: Coll) -> None:
        self.collection = collection

    async def insert(self, rows: Sequence[docs.Document]) -> None:
        """Record code owners; a code recorded already is left as it is (its owner is fixed)."""
        await insert_ignoring_duplicates(self.collection, rows)

    async def owner(self, code: str) -> str | None:
        """Return the customer holding the grant with this code."""
        doc = await self.collection.find_one({"_id": docs.pair_id("code", code)})
        return None if doc is None else str(doc["customer_id"])
