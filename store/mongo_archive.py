"""The archives beside the hot customer documents: applied ids and order records.

Only committed content is ever written here (``store.hot``), by ``_id`` digests of (customer
id, id); an order copy is never replaced by an older version's. Loads read them back for what a
batch references.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from models.state import CustomerState, OrderRecord
from store import documents as docs
from store.hot import HotPlan
from store.mongo_log import (
    DUPLICATE_KEY,
    ID_CHUNK,
    Coll,
    chunks,
    insert_ignoring_duplicates,
)
from store.repository import CustomerWrite, LoadRequest


class Archives:
    """``applied_id_archive`` and ``order_archive``."""

    def __init__(self, id_archive: Coll, order_archive: Coll) -> None:
        self.id_archive = id_archive
        self.order_archive = order_archive

    async def known_ids(
        self,
        found: Mapping[str, docs.Document],
        states: Mapping[str, CustomerState],
        wanted: Mapping[str, LoadRequest],
    ) -> dict[str, frozenset[str]]:
        """Return, per customer, the requested message ids found in the id archive."""
        pairs: dict[str, tuple[str, str]] = {}
        for cid, doc in found.items():
            if not doc.get("archived_ids"):
                continue
            ring = set(states[cid].applied_ids)
            for message_id in wanted[cid].message_ids - ring:
                pairs[docs.pair_id(cid, message_id)] = (cid, message_id)
        known: dict[str, set[str]] = {}
        for part in chunks(list(pairs), ID_CHUNK):
            async for row in self.id_archive.find({"_id": {"$in": list(part)}}, {"_id": 1}):
                cid, message_id = pairs[row["_id"]]
                known.setdefault(cid, set()).add(message_id)
        return {cid: frozenset(ids) for cid, ids in known.items()}

    async def restored_orders(
        self,
        found: Mapping[str, docs.Document],
        states: Mapping[str, CustomerState],
        wanted: Mapping[str, LoadRequest],
    ) -> dict[str, list[OrderRecord]]:
        """Return, per customer, the archived records of the orders the batch references."""
        ids: list[str] = []
        for cid, doc in found.items():
            if not doc.get("archived_orders"):
                continue
            hot = {o.order_id for o in states[cid].orders}
            ids.extend(docs.pair_id(cid, o) for o in sorted(wanted[cid].order_ids - hot))
        restored: dict[str, list[OrderRecord]] = {}
        for part in chunks(ids, ID_CHUNK):
            async for row in self.order_archive.find({"_id": {"$in": list(part)}}):
                record = OrderRecord.model_validate(row["record"])
                restored.setdefault(row["customer_id"], []).append(record)
        return restored

    async def archive(self, writes: Sequence[CustomerWrite], plans: Sequence[HotPlan]) -> None:
        """Copy committed ids and orders leaving the hot documents to the archives."""
        now = datetime.now(UTC)
        ids: list[docs.Document] = []
        orders: list[docs.Document] = []
        for write, plan in zip(writes, plans, strict=True):
            cid = write.customer_id
            ids.extend(docs.id_archive_doc(cid, m, now) for m in plan.archive_ids)
            orders.extend(
                docs.order_archive_doc(cid, o, plan.archive_version) for o in plan.archive_orders
            )
        await asyncio.gather(
            insert_ignoring_duplicates(self.id_archive, ids), self._archive_orders(orders)
        )

    async def _archive_orders(self, rows: list[docs.Document]) -> None:
        """Insert the order copies; replace only an older copy of those archived before.

        Most orders are archived once, and a plain insert costs the local server a fifth of
        a conditional upsert (docs/BENCHMARKS.md, "pipeline"): the upsert is kept for the
        few orders archived again after a batch restored and changed them.
        """
        if not rows:
            return
        again: list[docs.Document] = []
        try:
            await self.order_archive.insert_many(rows, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors) or exc.details.get(
                "writeConcernErrors"
            ):
                raise
            again = [rows[int(e["index"])] for e in errors]
        if not again:
            return
        ops = [
            # Only over an older copy: a stale writer never replaces a newer record.
            UpdateOne(
                {"_id": doc["_id"], "version": {"$lt": doc["version"]}},
                {"$set": {k: v for k, v in doc.items() if k != "_id"}},
                upsert=True,
            )
            for doc in again
        ]
        try:
            await self.order_archive.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            # A duplicate key means a newer copy is archived already (the filter missed it).
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise
