"""The MongoDB collections beside the customer documents: activity and parked messages."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from store import documents as docs
from store.repository import ActivityCursor, ActivityPage, BatchActivity, ParkedMessage

DUPLICATE_KEY = 11000
ID_CHUNK = 500
"""Ids per ``$in`` query on ``_id`` (keeps each query well below the server's limits)."""

Coll = AsyncCollection[dict[str, Any]]


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """Yield ``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def insert_ignoring_duplicates(collection: Coll, rows: Sequence[docs.Document]) -> None:
    """Insert documents whose ``_id`` may exist already; an existing one is left as it is."""
    if not rows:
        return
    try:
        await collection.insert_many(list(rows), ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors) or exc.details.get(
            "writeConcernErrors"
        ):
            raise


async def existing_ids(collection: Coll, ids: Sequence[str]) -> set[str]:
    """Return which of these ``_id``s exist in the collection."""
    found: set[str] = set()
    for part in chunks(ids, ID_CHUNK):
        async for row in collection.find({"_id": {"$in": list(part)}}, {"_id": 1}):
            found.add(row["_id"])
    return found


async def page_after(
    collection: Coll,
    query: dict[str, Any],
    keys: tuple[str, str],
    after: tuple[Any, Any] | None,
    limit: int,
    *,
    descending: bool = False,
    projection: dict[str, Any] | None = None,
) -> list[docs.Document]:
    """Return up to ``limit`` documents in (first, second) key order, strictly after ``after``.

    Keyset paging without ``$or``: the local server answers an ``$or`` with a collection scan,
    so the rest of the tie at the first key and what comes after it are two indexed queries.
    """
    first, second = keys
    op = "$lt" if descending else "$gt"
    order = DESCENDING if descending else ASCENDING
    sort = [(first, order), (second, order)]
    rows: list[docs.Document] = []
    rest = dict(query)
    if after is not None:
        tie = {**query, first: after[0], second: {op: after[1]}}
        rows = await collection.find(tie, projection).sort(sort).limit(limit).to_list()
        bound = query.get(first)
        rest[first] = {**(bound if isinstance(bound, dict) else {}), op: after[0]}
    if len(rows) < limit:
        cursor = collection.find(rest, projection).sort(sort).limit(limit - len(rows))
        rows.extend(await cursor.to_list())
    return rows


class ActivityLog:
    """Activity entries, one document each, read newest first per customer."""

    def __init__(self, collection: Coll) -> None:
        self.collection = collection

    async def insert(self, rows: Sequence[docs.Document]) -> None:
        """Insert activity documents; re-inserting one is a no-op."""
        await insert_ignoring_duplicates(self.collection, rows)

    async def insert_missing(self, rows: Sequence[docs.Document]) -> None:
        """Insert those of these documents a crash kept out of the collection."""
        if not rows:
            return
        present = await existing_ids(self.collection, [r["_id"] for r in rows])
        await self.insert([r for r in rows if r["_id"] not in present])

    async def page(
        self, customer_id: str, limit: int, before: ActivityCursor | None
    ) -> ActivityPage:
        """Return one page of a customer's activity, newest first."""
        after = None if before is None else (docs.to_millis(before.at), before.activity_id)
        rows = await page_after(
            self.collection,
            {"customer_id": customer_id},
            ("at", "activity_id"),
            after,
            limit + 1,
            descending=True,
        )
        return docs.activity_page(rows, limit)

    async def erase_notes(self, customer_id: str) -> None:
        """Blank the free-text notes of every entry of the customer (idempotent)."""
        erased = {f"entry.{name}": None for name in docs.ERASED_ACTIVITY_FIELDS}
        await self.collection.update_many({"customer_id": customer_id}, {"$set": erased})

    async def batch_counts(self, batch_id: str) -> BatchActivity:
        """Count the applied and refused rows of an import batch."""
        projection = {"row": 1, "kind": 1, "entry.details": 1, "_id": 0}
        cursor = self.collection.find({"batch_id": batch_id}, projection).batch_size(1000)
        return docs.batch_counts(batch_id, [row async for row in cursor])


class ParkingLot:
    """Messages for customers not known yet, identified by topic, partition and offset."""

    def __init__(self, collection: Coll) -> None:
        self.collection = collection
        self._seq = 0

    async def park(self, messages: Sequence[ParkedMessage]) -> None:
        """Park messages in arrival order; parking one again is a no-op."""
        rows = []
        for message in messages:
            self._seq += 1
            rows.append(docs.parked_doc(message, self._seq))
        await insert_ignoring_duplicates(self.collection, rows)

    async def for_customers(self, customer_ids: Collection[str]) -> dict[str, list[ParkedMessage]]:
        """Return the parked messages of these customers, in arrival order."""
        found: dict[str, list[ParkedMessage]] = {}
        ids = sorted(set(customer_ids))
        for part in chunks(ids, ID_CHUNK):
            cursor = self.collection.find({"customer_id": {"$in": list(part)}}).sort(
                [("customer_id", ASCENDING), ("parked_at", ASCENDING), ("seq", ASCENDING)]
            )
            async for doc in cursor:
                found.setdefault(doc["customer_id"], []).append(docs.decode_parked(doc))
        return found

    async def before(self, cutoff: datetime, limit: int) -> list[ParkedMessage]:
        """Return messages parked before ``cutoff``, oldest first."""
        cursor = (
            self.collection.find({"parked_at": {"$lt": cutoff}})
            .sort([("parked_at", ASCENDING), ("seq", ASCENDING)])
            .limit(limit)
        )
        return [docs.decode_parked(doc) async for doc in cursor]

    async def remove(self, messages: Sequence[ParkedMessage]) -> None:
        """Forget these parked messages."""
        ids = [docs.parked_id(m) for m in messages]
        for part in chunks(ids, ID_CHUNK):
            await self.collection.delete_many({"_id": {"$in": list(part)}})

    async def remove_customer(self, customer_id: str) -> None:
        """Drop every message parked for the customer (their raw values hold personal data)."""
        await self.collection.delete_many({"customer_id": customer_id})

    async def count(self) -> int:
        """Return how many messages are parked."""
        return await self.collection.count_documents({})
