"""Documents as stored, shared by the MongoDB and in-memory repositories.

The state is stored as ``model_dump(mode="json")`` (money as strings, times as RFC 3339) under
``state``; the fields the store queries on (email key, due time, groups, grant codes) are
copied to the top level with their own indexes. Nothing from user data becomes a key: ids are
values, and archive and activity ``_id``s are digests of (customer id, id) pairs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from models.state import ActivityEntry, CustomerState, OrderRecord
from store.hot import HotPlan, hydrate
from store.repository import (
    REFUSED_KIND,
    ActivityCursor,
    ActivityPage,
    ActivityRecord,
    BatchActivity,
    BatchRefusal,
    CustomerFilter,
    CustomerPage,
    ListCursor,
    OutboxEntry,
    ParkedMessage,
    StoredCustomer,
    TopicPartition,
    normalize_email,
)

Document = dict[str, Any]


def pair_id(*parts: str | int) -> str:
    """Return a fixed-length ``_id`` for a tuple of values (no separator can be forged)."""
    digest = hashlib.sha256()
    for part in parts:
        raw = str(part).encode("utf-8")
        digest.update(len(raw).to_bytes(4, "big"))
        digest.update(raw)
    return digest.hexdigest()[:40]


def grant_codes(state: CustomerState) -> list[str]:
    """Return the codes of the customer's grants (grants gain ``code`` with the domain issue)."""
    codes = (getattr(grant, "code", None) for grant in state.rewards)
    return sorted({code for code in codes if isinstance(code, str) and code})


def to_millis(at: datetime, *, up: bool = False) -> datetime:
    """Return ``at`` at BSON's millisecond precision (rounded up when ``up``)."""
    micros = at.microsecond % 1000
    base = at.replace(microsecond=at.microsecond - micros)
    return base + timedelta(milliseconds=1) if up and micros else base


def customer_fields(
    plan: HotPlan, offsets: Mapping[TopicPartition, int], activity: list[Document]
) -> Document:
    """Return the document fields a save sets (everything but ``_id``, version and outbox).

    ``activity`` (this batch's activity documents) rides in the same atomic update as
    ``activity_pending``, is inserted into the activity collection right after, and is
    inserted again by the next load if a crash came in between (``missing_activity``).
    """
    state = plan.state
    fields: Document = {
        "state": state.model_dump(mode="json"),
        # None is outside the unique index's partial filter: customers without an email.
        "email_key": email_key_of(state),
        "groups": list(state.groups),
        "codes": grant_codes(state),
        "next_due_at": _due(state.next_due_at),
        # Listings sort on it (newest first): a BSON date, unlike the RFC 3339 text in state.
        "joined_at": to_millis(state.joined_at),
        "offsets": [
            {"topic": topic, "partition": partition, "offset": offset}
            for (topic, partition), offset in sorted(offsets.items())
        ],
        "activity_pending": activity,
    }
    if plan.archive_ids:
        fields["archived_ids"] = True
    if plan.archive_orders:
        fields["archived_orders"] = True
    return fields


def _due(at: datetime | None) -> datetime | None:
    # Rounded up: a customer is never found due before its state says it is.
    return None if at is None else to_millis(at, up=True)


def email_key_of(state: CustomerState) -> str | None:
    """Return the unique email key, or None when the customer has no email (forgotten)."""
    return state.email_normalized or None


def merged_offsets(
    loaded: StoredCustomer | None, batch: Mapping[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """Return the stored offsets raised to this batch's (never lowered)."""
    offsets = dict(loaded.offsets) if loaded else {}
    for tp, offset in batch.items():
        key = (str(tp[0]), int(tp[1]))
        offsets[key] = max(offset, offsets.get(key, -1))
    return offsets


def decode_customer(
    doc: Document, restored: list[OrderRecord], known_ids: frozenset[str]
) -> StoredCustomer:
    """Return the stored customer of a document, hydrated with archived orders and ids."""
    stored = CustomerState.model_validate(doc["state"])
    hot_orders = frozenset(o.order_id for o in stored.orders)
    state = hydrate(stored, restored, known_ids)
    return StoredCustomer(
        state=state,
        version=int(doc["version"]),
        offsets={(o["topic"], int(o["partition"])): int(o["offset"]) for o in doc["offsets"]},
        known_ids=known_ids,
        outbox=tuple(decode_outbox(e) for e in doc.get("outbox", ())),
        hot_ring=stored.applied_ids,
        hot_order_ids=hot_orders,
        restored_order_ids=frozenset(o.order_id for o in restored) - hot_orders,
    )


def encode_outbox(entry: OutboxEntry) -> Document:
    """Return an outbox entry as stored in the customer document."""
    return {"id": entry.output_id, "topic": entry.topic, "key": entry.key, "value": entry.value}


def decode_outbox(doc: Document) -> OutboxEntry:
    """Return an outbox entry from the customer document."""
    return OutboxEntry(
        output_id=doc["id"], topic=doc["topic"], key=doc["key"], value=bytes(doc["value"])
    )


def id_archive_doc(customer_id: str, message_id: str, at: datetime) -> Document:
    """Return an id archive document: this message id was applied to this customer."""
    return {
        "_id": pair_id(customer_id, message_id),
        "customer_id": customer_id,
        "message_id": message_id,
        "archived_at": at,
    }


def order_archive_doc(customer_id: str, order: OrderRecord, version: int) -> Document:
    """Return an order archive document; ``version`` is the customer version it comes from."""
    return {
        "_id": pair_id(customer_id, order.order_id),
        "customer_id": customer_id,
        "order_id": order.order_id,
        "version": version,
        "record": order.model_dump(mode="json"),
    }


def activity_doc(customer_id: str, record: ActivityRecord) -> Document:
    """Return an activity document; its ``_id`` derives from the customer and entry id."""
    entry = record.entry
    return {
        "_id": pair_id(customer_id, entry.activity_id),
        "customer_id": customer_id,
        "activity_id": entry.activity_id,
        "at": to_millis(entry.at),
        "kind": entry.kind,
        "batch_id": record.batch_id,
        "row": record.row,
        "entry": entry.model_dump(mode="json"),
    }


def decode_activity(doc: Document) -> ActivityEntry:
    """Return the activity entry of an activity document."""
    return ActivityEntry.model_validate(doc["entry"])


def parked_doc(message: ParkedMessage, seq: int) -> Document:
    """Return a parked message document, identified by its topic, partition and offset."""
    return {
        "_id": pair_id(message.topic, message.partition, message.offset),
        "customer_id": message.customer_id,
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "key": message.key,
        "value": message.value,
        "parked_at": to_millis(message.parked_at),
        "seq": seq,
    }


def decode_parked(doc: Document) -> ParkedMessage:
    """Return the parked message of a document."""
    key = doc.get("key")
    return ParkedMessage(
        customer_id=doc["customer_id"],
        topic=doc["topic"],
        partition=int(doc["partition"]),
        offset=int(doc["offset"]),
        key=bytes(key) if key is not None else None,
        value=bytes(doc["value"]),
        parked_at=doc["parked_at"],
    )


def parked_id(message: ParkedMessage) -> str:
    """Return the ``_id`` of a parked message."""
    return pair_id(message.topic, message.partition, message.offset)


def activity_page(rows: list[Document], limit: int) -> ActivityPage:
    """Return a page of at most ``limit`` rows and the cursor after it."""
    page = rows[:limit]
    more = len(rows) > limit
    last = page[-1] if page and more else None
    cursor = ActivityCursor(at=last["at"], activity_id=last["activity_id"]) if last else None
    return ActivityPage(entries=tuple(decode_activity(d) for d in page), next=cursor)


def batch_counts(batch_id: str, rows: Sequence[Document]) -> BatchActivity:
    """Count rows: refused when any entry of the row is a refusal, else applied."""
    refused: dict[int, BatchRefusal] = {}
    applied: set[int] = set()
    for doc in rows:
        row = doc["row"]
        if row is None:
            continue
        if doc["kind"] == REFUSED_KIND:
            details = doc["entry"].get("details", {})
            refused[row] = BatchRefusal(
                row=row, code=str(details.get("code", "")), reason=str(details.get("reason", ""))
            )
        else:
            applied.add(row)
    applied -= refused.keys()
    return BatchActivity(
        batch_id=batch_id,
        applied=len(applied),
        refused=len(refused),
        refusals=tuple(refused[r] for r in sorted(refused)),
    )


def list_matches(doc: Document, where: CustomerFilter) -> bool:
    """Whether a customer document passes a listing filter (the in-memory query)."""
    state = doc["state"]
    if where.tier is not None and state.get("tier") != where.tier:
        return False
    if where.status is not None and state.get("status", "active") != where.status:
        return False
    if where.email_contains:
        fragment = normalize_email(where.email_contains)
        if fragment not in (doc.get("email_key") or ""):
            return False
    return True


def customer_page(rows: list[Document], limit: int) -> CustomerPage:
    """Return a page of at most ``limit`` customer documents and the cursor after it."""
    page = rows[:limit]
    last = page[-1] if page and len(rows) > limit else None
    states = tuple(CustomerState.model_validate(doc["state"]) for doc in page)
    cursor = None
    if last is not None:
        # Documents saved before ``joined_at`` was copied to the top level carry it in state.
        joined = last.get("joined_at") or to_millis(states[-1].joined_at)
        cursor = ListCursor(joined_at=joined, customer_id=last["_id"])
    return CustomerPage(customers=states, next=cursor)
