"""An in-memory ``CustomerRepository`` with the MongoDB one's semantics, for fast tests.

Documents are kept in the stored shape (``store.documents``), so serialisation, the version
check, the unique email, the archives and hydration behave as they do in MongoDB. Not for
production: nothing survives the process.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from datetime import UTC, datetime

from models.state import OrderRecord
from store import documents as docs
from store.hot import HotPlan, plan_write
from store.repository import (
    ActivityCursor,
    ActivityPage,
    ActivityRecord,
    BatchActivity,
    CustomerFilter,
    CustomerPage,
    CustomerWrite,
    DueCustomer,
    ListCursor,
    LoadRequest,
    ParkedMessage,
    PendingOutbox,
    SaveResult,
    StoredCustomer,
    merge_requests,
    normalize_email,
)

DEFAULT_HOT_ORDERS = 20
"""Orders the hot document keeps after archiving (the low-water mark)."""
DEFAULT_ORDER_SLACK = 20
"""Orders beyond ``hot_orders`` the document may hold before a save archives (store.hot)."""
DEFAULT_ID_SLACK = 256
"""Ids beyond the rules' ring the document may hold before a save archives (store.hot)."""


class MemoryCustomerRepository:
    """Customers, archives, activity and parked messages in dictionaries."""

    def __init__(
        self,
        *,
        hot_orders: int = DEFAULT_HOT_ORDERS,
        order_slack: int = DEFAULT_ORDER_SLACK,
        id_slack: int = DEFAULT_ID_SLACK,
    ) -> None:
        self.hot_orders = hot_orders
        self.order_slack = order_slack
        self.id_slack = id_slack
        self.customers: dict[str, docs.Document] = {}
        self.id_archive: dict[str, docs.Document] = {}
        self.order_archive: dict[str, docs.Document] = {}
        self.codes: dict[str, str] = {}
        """Grant code -> the customer holding it (a code never changes hands)."""
        self.activity_log: dict[str, docs.Document] = {}
        self.parked: dict[str, docs.Document] = {}
        self._seq = 0

    async def load_many(self, requests: Sequence[LoadRequest]) -> dict[str, StoredCustomer]:
        """Load these customers, hydrated with the archived ids and orders the batch needs."""
        found: dict[str, StoredCustomer] = {}
        for request in merge_requests(requests).values():
            doc = self.customers.get(request.customer_id)
            if doc is None:
                continue
            cid = request.customer_id
            known = frozenset(
                m for m in request.message_ids if docs.pair_id(cid, m) in self.id_archive
            )
            restored = [
                OrderRecord.model_validate(self.order_archive[docs.pair_id(cid, o)]["record"])
                for o in sorted(request.order_ids)
                if docs.pair_id(cid, o) in self.order_archive
            ]
            # Activity a crash kept from the collection after its update (see save_batch).
            self._insert_activity(docs.pending_activity(doc))
            found[cid] = docs.decode_customer(copy.deepcopy(doc), restored, known)
        return found

    async def get(self, customer_id: str) -> StoredCustomer | None:
        """Load one customer as stored."""
        doc = self.customers.get(customer_id)
        return None if doc is None else docs.decode_customer(copy.deepcopy(doc), [], frozenset())

    async def save_batch(self, writes: Sequence[CustomerWrite]) -> SaveResult:
        """Archive, write each customer whose version still matches, then record activity."""
        now = datetime.now(UTC)
        plans = [
            plan_write(w, self.hot_orders, order_slack=self.order_slack, id_slack=self.id_slack)
            for w in writes
        ]
        for write, plan in zip(writes, plans, strict=True):
            self._archive(write.customer_id, plan, now)
        saved: set[str] = set()
        conflicts: set[str] = set()
        taken: dict[str, str] = {}
        flushed: list[docs.Document] = []
        for write, plan in zip(writes, plans, strict=True):
            cid = write.customer_id
            current = self.customers.get(cid)
            expected = write.loaded.version if write.loaded else None
            if (current is None) != (expected is None) or (
                current is not None and current["version"] != expected
            ):
                conflicts.add(cid)
                continue
            key = docs.email_key_of(plan.state)
            owner = self._email_owner(key) if key else None
            if owner is not None and owner != cid:
                taken[cid] = owner
                continue
            activity = [docs.activity_doc(cid, r) for r in write.activity]
            offsets = docs.merged_offsets(write.loaded, write.offsets)
            doc = dict(current or {"_id": cid, "outbox": []})
            doc.pop("email_key", None)  # as MongoDB's $unset when the email is gone
            codes = docs.added_codes(write)
            doc.update(copy.deepcopy(docs.customer_fields(plan, offsets, activity, codes)))
            for code in codes:
                self.codes.setdefault(code, cid)  # as the insert that ignores duplicates
            doc["version"] = (expected or 0) + 1
            doc["outbox"] = [*doc["outbox"], *map(docs.encode_outbox, write.outbox)]
            self.customers[cid] = doc
            saved.add(cid)
            flushed.extend(activity)
        self._insert_activity(flushed)
        return SaveResult(saved=frozenset(saved), conflicts=frozenset(conflicts), email_taken=taken)

    def _archive(self, customer_id: str, plan: HotPlan, now: datetime) -> None:
        # By (customer, id) key, as MongoDB's chunks are looked up; the newest copy wins.
        for message_id in plan.archive_ids:
            key = docs.pair_id(customer_id, message_id)
            self.id_archive.setdefault(key, {"message_id": message_id, "archived_at": now})
        for order in plan.archive_orders:
            key = docs.pair_id(customer_id, order.order_id)
            held = self.order_archive.get(key)
            if held is None or held["version"] < plan.archive_version:
                self.order_archive[key] = {
                    "version": plan.archive_version,
                    "record": order.model_dump(mode="json"),
                }

    def _email_owner(self, key: str) -> str | None:
        return next((c for c, d in self.customers.items() if d.get("email_key") == key), None)

    def _insert_activity(self, activity: Sequence[docs.Document]) -> None:
        for doc in activity:
            self.activity_log.setdefault(doc["_id"], copy.deepcopy(doc))

    async def append_activity(self, customer_id: str, records: Sequence[ActivityRecord]) -> None:
        """Record activity entries; an id already recorded is left as it is."""
        self._insert_activity([docs.activity_doc(customer_id, r) for r in records])

    async def activity(
        self, customer_id: str, *, limit: int = 50, before: ActivityCursor | None = None
    ) -> ActivityPage:
        """Return one page of the customer's activity, newest first."""
        rows = sorted(
            (d for d in self.activity_log.values() if d["customer_id"] == customer_id),
            key=lambda d: (d["at"], d["activity_id"]),
            reverse=True,
        )
        if before is not None:
            mark = (docs.to_millis(before.at), before.activity_id)
            rows = [d for d in rows if (d["at"], d["activity_id"]) < mark]
        return docs.activity_page(rows, limit)

    async def batch_activity(self, batch_id: str) -> BatchActivity:
        """Count the rows of an import batch that were applied and refused."""
        rows = [d for d in self.activity_log.values() if d.get("batch_id") == batch_id]
        return docs.batch_counts(batch_id, rows)

    async def pending_outbox(
        self,
        *,
        customer_ids: Collection[str] | None = None,
        written_before: datetime | None = None,
        limit: int = 1000,
    ) -> list[PendingOutbox]:
        """Return customers with unsent outputs (written before the cutoff), by customer id."""
        wanted = sorted(customer_ids if customer_ids is not None else self.customers)
        pending = []
        for cid in wanted:
            doc = self.customers.get(cid)
            if doc is None:
                continue
            entries = tuple(
                docs.decode_outbox(e)
                for e in doc["outbox"]
                if written_before is None or docs.outbox_due(e, written_before)
            )
            if entries:
                pending.append(PendingOutbox(customer_id=cid, entries=entries))
        return pending[:limit]

    async def mark_sent(self, sent: Mapping[str, Collection[str]]) -> None:
        """Remove published outputs from the outboxes."""
        for cid, output_ids in sent.items():
            doc = self.customers.get(cid)
            if doc is None:
                continue
            done = set(output_ids)
            doc["outbox"] = [e for e in doc["outbox"] if e["id"] not in done]

    async def park(self, messages: Sequence[ParkedMessage]) -> None:
        """Keep messages for customers not known yet; parking one again is a no-op."""
        for message in messages:
            self._seq += 1
            doc = docs.parked_doc(message, self._seq)
            self.parked.setdefault(doc["_id"], doc)

    async def parked_for(self, customer_ids: Collection[str]) -> dict[str, list[ParkedMessage]]:
        """Return the parked messages of these customers, in arrival order."""
        wanted = set(customer_ids)
        rows = sorted((d for d in self.parked.values() if d["customer_id"] in wanted), key=_arrival)
        found: dict[str, list[ParkedMessage]] = {}
        for doc in rows:
            found.setdefault(doc["customer_id"], []).append(docs.decode_parked(doc))
        return found

    async def parked_before(self, cutoff: datetime, *, limit: int = 500) -> list[ParkedMessage]:
        """Return messages parked before ``cutoff``, oldest first."""
        rows = sorted((d for d in self.parked.values() if d["parked_at"] < cutoff), key=_arrival)
        return [docs.decode_parked(d) for d in rows[:limit]]

    async def unpark(self, messages: Sequence[ParkedMessage]) -> None:
        """Forget these parked messages."""
        for message in messages:
            self.parked.pop(docs.parked_id(message), None)

    async def erase_personal_data(self, customer_id: str) -> None:
        """Erase what ``customer.forget`` asks beyond the state: notes, parked messages."""
        for doc in self.activity_log.values():
            if doc["customer_id"] == customer_id:
                doc["entry"].update(dict.fromkeys(docs.ERASED_ACTIVITY_FIELDS))
        for key in [k for k, d in self.parked.items() if d["customer_id"] == customer_id]:
            del self.parked[key]

    async def parked_count(self) -> int:
        """Return how many messages are parked."""
        return len(self.parked)

    async def due_customers(
        self, at: datetime, *, after: DueCustomer | None = None, limit: int = 500
    ) -> list[DueCustomer]:
        """Return customers due at or before ``at``, by due time then id."""
        due = sorted(
            DueCustomer(due_at=d["lookup"]["next_due_at"], customer_id=cid)
            for cid, d in self.customers.items()
            if d["lookup"]["next_due_at"] is not None and d["lookup"]["next_due_at"] <= at
        )
        if after is not None:
            due = [d for d in due if (d.due_at, d.customer_id) > (after.due_at, after.customer_id)]
        return due[:limit]

    async def group_members(self, group_id: str) -> AsyncIterator[str]:
        """Stream the ids of the customers in this group, by id."""
        for cid in sorted(self.customers):
            if group_id in self.customers[cid]["lookup"]["groups"]:
                yield cid

    async def customer_id_by_email(self, email: str) -> str | None:
        """Return the customer holding this email, compared case-insensitively."""
        return self._email_owner(normalize_email(email))

    async def email_owners(self, emails: Collection[str]) -> dict[str, str]:
        """Map each normalised email held by a customer to its owner."""
        keys = {normalize_email(e) for e in emails}
        return {d["email_key"]: c for c, d in self.customers.items() if d.get("email_key") in keys}

    async def customer_id_by_code(self, code: str) -> str | None:
        """Return the customer holding the grant with this code."""
        return self.codes.get(code)

    async def customer_ids(self) -> AsyncIterator[str]:
        """Stream every customer id, in id order."""
        for cid in sorted(self.customers):
            yield cid

    async def list_customers(
        self, where: CustomerFilter, *, after: ListCursor | None = None, limit: int = 50
    ) -> CustomerPage:
        """Return customers newest first, one page."""
        rows = sorted(
            (d for d in self.customers.values() if docs.list_matches(d["lookup"], where)),
            key=_newest_first,
            reverse=True,
        )
        if after is not None:
            mark = (after.joined_at, after.customer_id)
            rows = [d for d in rows if _newest_first(d) < mark]
        return docs.customer_page(copy.deepcopy(rows[: limit + 1]), limit)

    async def close(self) -> None:
        """Nothing to release."""


def _newest_first(doc: docs.Document) -> tuple[datetime, str]:
    return (doc["lookup"]["joined_at"], doc["_id"])


def _arrival(doc: docs.Document) -> tuple[datetime, int]:
    return (doc["parked_at"], doc["seq"])
