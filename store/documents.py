"""Documents as stored, shared by the MongoDB and in-memory repositories.

The state is stored as ``model_dump(mode="json")`` (money as strings, times as RFC 3339) under
``state``; the email key is copied to the top level for its unique index, the due time and
groups to ``lookup`` (and to the lookup collection, ``store.mongo_lookup``), each grant code to
a document of its own (``reward_codes``). Nothing from user data becomes a key: ids are values,
and archive, code and activity ``_id``s are digests.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
from bson.codec_options import CodecOptions

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
    CustomerWrite,
    ListCursor,
    OutboxEntry,
    ParkedMessage,
    StoredCustomer,
    TopicPartition,
    normalize_email,
)

Document = dict[str, Any]
_AWARE: CodecOptions[Document] = CodecOptions(tz_aware=True, tzinfo=UTC)


def pair_id(*parts: str | int) -> str:
    """Return a fixed-length ``_id`` for a tuple of values (no separator can be forged)."""
    digest = hashlib.sha256()
    for part in parts:
        raw = str(part).encode("utf-8")
        digest.update(len(raw).to_bytes(4, "big"))
        digest.update(raw)
    return digest.hexdigest()[:40]


def added_codes(write: CustomerWrite) -> list[str]:
    """Return the grant codes the written state holds that the loaded one did not."""
    before = write.loaded.state.rewards if write.loaded is not None else ()
    if write.state.rewards is before:
        return []  # untouched by the batch: the same tuple (most events grant nothing)
    held = {grant.code for grant in before}
    return sorted({g.code for g in write.state.rewards if g.code and g.code not in held})


def code_doc(customer_id: str, code: str) -> Document:
    """Return the reward code document: this code belongs to this customer (for good)."""
    return {"_id": pair_id("code", code), "code": code, "customer_id": customer_id}


def pending_codes(doc: Document) -> list[Document]:
    """Return the code documents a customer document carries from its last save."""
    return [code_doc(doc["_id"], code) for code in doc.get("codes_pending") or ()]


def to_millis(at: datetime, *, up: bool = False) -> datetime:
    """Return ``at`` at BSON's millisecond precision (rounded up when ``up``)."""
    micros = at.microsecond % 1000
    base = at.replace(microsecond=at.microsecond - micros)
    return base + timedelta(milliseconds=1) if up and micros else base


def customer_fields(
    plan: HotPlan,
    offsets: Mapping[TopicPartition, int],
    activity: list[Document],
    codes: Sequence[str] = (),
) -> Document:
    """Return the document fields a save sets (everything but ``_id``, version and outbox).

    ``activity`` (this batch's activity documents) rides in the same atomic update as
    ``activity_pending``, is inserted into the activity collection right after, and is
    inserted again by the next load if a crash came in between (``missing_activity``).
    ``codes`` (the grant codes this save adds) ride as ``codes_pending`` the same way.
    """
    state = plan.state
    fields: Document = {
        "state": pack_state(state),
        "profile": profile_of(state),
        "lookup": lookup_of(state),
        "offsets": [
            {"topic": topic, "partition": partition, "offset": offset}
            for (topic, partition), offset in sorted(offsets.items())
        ],
        "activity_pending": pack_activity(activity),
        "codes_pending": list(codes),
    }
    key = email_key_of(state)
    if key is not None:
        # Absent, not null, without an email: the sparse unique index skips absent fields only.
        fields["email_key"] = key
    if plan.archive_ids:
        fields["archived_ids"] = True
    if plan.archive_orders:
        fields["archived_orders"] = True
    return fields


def lookup_of(state: CustomerState) -> Document:
    """Return what the lookup collection indexes: due time, groups, listing fields.

    Grant codes are not in it: they accumulate with the history, and on the local server
    every write of a document costs in proportion to its entries in a multikey index (a
    lookup with 130 codes costs 6-7 times one with 5). A code's owner never changes, so each
    code is a document of its own (``code_doc``), inserted once by the save that adds it.
    """
    due = state.next_due_at
    return {
        # Rounded up: a customer is never found due before its state says it is.
        "next_due_at": None if due is None else to_millis(due, up=True),
        "groups": list(state.groups),
        # Listings sort on it (newest first): a BSON date, unlike the RFC 3339 text in state.
        "joined_at": to_millis(state.joined_at),
        "tier": state.tier,
        "status": state.status,
        "email_key": email_key_of(state),
    }


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


class CorruptDocumentError(Exception):
    """A customer document lacks what the store writes (it was written by something else)."""


PROFILE_FIELDS = (
    "customer_id",
    "email",
    "first_name",
    "last_name",
    "accepts_email",
    "status",
    "tier",
)
"""State fields kept readable beside the packed state, for people and for the email notifier."""


def pack_state(state: CustomerState) -> bytes:
    """Return the state as stored: its JSON, deflated.

    On the local server an update costs in proportion to the document's BSON size, and a
    nested document of 1,000 points lots costs 20 times a packed one (docs/storage.md).
    """
    return zlib.compress(state.model_dump_json().encode("utf-8"), 1)


def unpack_state(doc: Document) -> CustomerState:
    """Return the state of a customer document (packed, or plain as first stored)."""
    held = doc["state"]
    if isinstance(held, bytes):
        return CustomerState.model_validate_json(zlib.decompress(held))
    return CustomerState.model_validate(held)


def pack_activity(activity: list[Document]) -> bytes | None:
    """Return this batch's activity documents as carried in the customer update: deflated BSON."""
    if not activity:
        return None
    return zlib.compress(bson.encode({"entries": activity}), 1)


def pending_activity(doc: Document) -> list[Document]:
    """Return the activity documents a customer document carries from its last save."""
    held = doc.get("activity_pending")
    if not held:
        return []
    if isinstance(held, list):  # as first stored, before it was packed
        return held
    decoded = bson.decode(zlib.decompress(held), codec_options=_AWARE)
    return list(decoded["entries"])


def profile_of(state: CustomerState) -> Document:
    """Return the readable part of the state (contact fields and tier)."""
    dumped = state.model_dump(mode="json", include=set(PROFILE_FIELDS))
    return {name: dumped.get(name) for name in PROFILE_FIELDS}


def check_customer(doc: Document) -> Document:
    """Return the document if the store can use it; say what is missing otherwise."""
    missing = [field for field in ("version", "state") if field not in doc]
    if not missing and not isinstance(doc["state"], (bytes, dict)):
        missing = ["readable state"]
    if missing:
        raise CorruptDocumentError(
            f"customer {doc.get('_id')!r}: the stored document has no {' or '.join(missing)}; "
            "customer documents must be written through the store (store.mongo), which keeps "
            "the version check and the lookups consistent"
        )
    return doc


def lookup_in(doc: Document) -> Document:
    """Return the lookup values a customer document carries (computed if it has none)."""
    held = doc.get("lookup")
    return held if held is not None else lookup_of(unpack_state(doc))


def decode_customer(
    doc: Document,
    restored: list[OrderRecord],
    known_ids: frozenset[str],
    stored: CustomerState | None = None,
) -> StoredCustomer:
    """Return the stored customer of a document, hydrated with archived orders and ids."""
    stored = stored if stored is not None else unpack_state(doc)
    hot_orders = frozenset(o.order_id for o in stored.orders)
    state = hydrate(stored, restored, known_ids)
    return StoredCustomer(
        state=state,
        version=int(doc["version"]),
        offsets={
            (o["topic"], int(o["partition"])): int(o["offset"]) for o in doc.get("offsets", ())
        },
        known_ids=known_ids,
        outbox=tuple(decode_outbox(e) for e in doc.get("outbox", ())),
        hot_ring=stored.applied_ids,
        hot_order_ids=hot_orders,
        restored_order_ids=frozenset(o.order_id for o in restored) - hot_orders,
    )


def encode_outbox(entry: OutboxEntry) -> Document:
    """Return an outbox entry as stored in the customer document (``written_at`` if known)."""
    doc: Document = {
        "id": entry.output_id,
        "topic": entry.topic,
        "key": entry.key,
        "value": entry.value,
    }
    if entry.written_at is not None:
        doc["written_at"] = to_millis(entry.written_at)  # as BSON keeps it, on both stores
    return doc


def decode_outbox(doc: Document) -> OutboxEntry:
    """Return an outbox entry from the customer document (no ``written_at``: stored before it)."""
    return OutboxEntry(
        output_id=doc["id"],
        topic=doc["topic"],
        key=doc["key"],
        value=bytes(doc["value"]),
        written_at=doc.get("written_at"),
    )


def outbox_due(doc: Document, written_before: datetime) -> bool:
    """Whether a stored outbox entry was written before the cutoff (or has no write time)."""
    written_at = doc.get("written_at")
    return written_at is None or written_at < to_millis(written_before)


def id_chunk_doc(
    customer_id: str, message_ids: Sequence[str], version: int, at: datetime
) -> Document:
    """Return an id archive chunk: these message ids were applied to this customer.

    ``keys`` are the ``(customer id, message id)`` digests a load looks up (multikey index);
    the ``_id`` is a digest of the whole content, so writing the same chunk again is a no-op.
    """
    return {
        "_id": pair_id(customer_id, "ids", version, *message_ids),
        "customer_id": customer_id,
        "version": version,
        "keys": [pair_id(customer_id, m) for m in message_ids],
        "message_ids": list(message_ids),
        "archived_at": at,
    }


def order_chunk_doc(customer_id: str, orders: Sequence[OrderRecord], version: int) -> Document:
    """Return an order archive chunk; ``version`` is the customer version the records are from."""
    order_ids = [o.order_id for o in orders]
    return {
        "_id": pair_id(customer_id, "orders", version, *order_ids),
        "customer_id": customer_id,
        "version": version,
        "keys": [pair_id(customer_id, o) for o in order_ids],
        "records": [o.model_dump(mode="json") for o in orders],
    }


def chunk_records(doc: Document) -> list[dict[str, Any]]:
    """Return the order records of an order archive document (one record before chunks)."""
    if "records" in doc:
        return list(doc["records"])
    return [doc["record"]] if "record" in doc else []


def activity_doc(customer_id: str, record: ActivityRecord) -> Document:
    """Return an activity document; its ``_id`` derives from the customer and entry id."""
    entry = record.entry
    doc: Document = {
        "_id": pair_id(customer_id, entry.activity_id),
        "customer_id": customer_id,
        "activity_id": entry.activity_id,
        "at": to_millis(entry.at),
        "kind": entry.kind,
        "entry": entry.model_dump(mode="json"),
    }
    if record.batch_id is not None:
        # Only import entries carry these: the sparse batch index then holds only them.
        doc["batch_id"] = record.batch_id
        doc["row"] = record.row
    return doc


ERASED_ACTIVITY_FIELDS = ("internal_note", "customer_note")
"""The free-text fields of an activity entry that ``customer.forget`` erases."""


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


def list_matches(lookup: Document, where: CustomerFilter) -> bool:
    """Whether a customer's lookup values pass a listing filter (the in-memory query)."""
    if where.tier is not None and lookup["tier"] != where.tier:
        return False
    if where.status is not None and lookup["status"] != where.status:
        return False
    if where.email_contains:
        fragment = normalize_email(where.email_contains)
        if fragment not in (lookup["email_key"] or ""):
            return False
    return True


def customer_page(rows: list[Document], limit: int) -> CustomerPage:
    """Return a page of at most ``limit`` customer documents and the cursor after it."""
    page = rows[:limit]
    last = page[-1] if page and len(rows) > limit else None
    states = tuple(unpack_state(doc) for doc in page)
    cursor = None
    if last is not None:
        cursor = ListCursor(joined_at=to_millis(states[-1].joined_at), customer_id=last["_id"])
    return CustomerPage(customers=states, next=cursor)
