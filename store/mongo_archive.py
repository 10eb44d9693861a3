"""The archives beside the hot customer documents: applied ids and order records.

Only committed content is ever written here (``store.hot``). Each save that archives writes one
document per customer and kind, a *chunk*: the ids (or order records) that left that customer's
hot document at that save, with ``keys``, the ``_id`` digests of (customer id, id) of what it
holds, under a multikey index. Loads find what a batch references by those keys. A chunk is
only ever inserted; an order archived again (restored by a load, then changed) goes into a
later chunk with a higher ``version``, and a load takes the copy of the highest version, so an
older copy never hides a newer one.

Why chunks: on the local server an insert costs about the same per document whatever its size,
and an index entry far less (measured: 500 one-id documents 33-167 ms, one document with 500
indexed keys 11-41 ms), and water marks (``store.hot.plan_write``) make the chunks large.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from models.state import CustomerState, OrderRecord
from store import documents as docs
from store.hot import HotPlan
from store.mongo_log import ID_CHUNK, Coll, chunks, insert_ignoring_duplicates
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
            async for row in self.id_archive.find({"keys": {"$in": list(part)}}, {"keys": 1}):
                for key in row["keys"]:
                    if key in pairs:
                        cid, message_id = pairs[key]
                        known.setdefault(cid, set()).add(message_id)
        return {cid: frozenset(ids) for cid, ids in known.items()}

    async def restored_orders(
        self,
        found: Mapping[str, docs.Document],
        states: Mapping[str, CustomerState],
        wanted: Mapping[str, LoadRequest],
    ) -> dict[str, list[OrderRecord]]:
        """Return, per customer, the archived records of the orders the batch references."""
        keys: dict[str, tuple[str, str]] = {}
        for cid, doc in found.items():
            if not doc.get("archived_orders"):
                continue
            hot = {o.order_id for o in states[cid].orders}
            for order_id in wanted[cid].order_ids - hot:
                keys[docs.pair_id(cid, order_id)] = (cid, order_id)
        asked = set(keys.values())
        newest: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        for part in chunks(list(keys), ID_CHUNK):
            async for row in self.order_archive.find({"keys": {"$in": list(part)}}):
                version = int(row["version"])
                for record in docs.chunk_records(row):
                    key = (row["customer_id"], str(record["order_id"]))
                    held = newest.get(key)
                    if key in asked and (held is None or held[0] < version):
                        newest[key] = (version, record)
        restored: dict[str, list[OrderRecord]] = {}
        for (cid, _), (_, record) in sorted(newest.items()):
            restored.setdefault(cid, []).append(OrderRecord.model_validate(record))
        return restored

    async def archive(self, writes: Sequence[CustomerWrite], plans: Sequence[HotPlan]) -> None:
        """Copy committed ids and orders leaving the hot documents to the archives."""
        now = datetime.now(UTC)
        ids: list[docs.Document] = []
        orders: list[docs.Document] = []
        for write, plan in zip(writes, plans, strict=True):
            cid = write.customer_id
            if plan.archive_ids:
                ids.append(docs.id_chunk_doc(cid, plan.archive_ids, plan.archive_version, now))
            if plan.archive_orders:
                orders.append(docs.order_chunk_doc(cid, plan.archive_orders, plan.archive_version))
        # A chunk's ``_id`` is a digest of its content: a redo of the same chunk is a no-op.
        await asyncio.gather(
            insert_ignoring_duplicates(self.id_archive, ids),
            insert_ignoring_duplicates(self.order_archive, orders),
        )
