"""The store's contract: what the worker, the scheduler and the read interface ask of it.

``CustomerRepository`` is implemented twice, in ``store.mongo`` (PyMongo ``AsyncMongoClient``)
and in ``store.memory`` (for fast tests of the worker pipeline); one contract test class runs
against both (``tests/store_contract.py``). Everything here is plain data: no driver types.

The records below are values: customer ids, emails, order ids and message ids are only ever
compared as values, never turned into query operators or document keys.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from models.state import ActivityEntry, CustomerState

TopicPartition = tuple[str, int]
"""An input topic and partition; faust's and aiokafka's ``TP`` named tuples are such tuples."""

REFUSED_KIND = "rejected"
"""The activity kind the rules log for a refused message (see ``models.decide``)."""


@dataclass(frozen=True)
class LoadRequest:
    """One customer a batch needs, with what the batch may ask the rules about.

    ``message_ids``: ids of the batch's messages for this customer; those found in the id
    archive come back in ``StoredCustomer.known_ids``. ``order_ids``: orders the batch's order
    messages reference; archived records of them are put back into ``state.orders``.
    """

    customer_id: str
    message_ids: frozenset[str] = frozenset()
    order_ids: frozenset[str] = frozenset()


def merge_requests(requests: Iterable[LoadRequest]) -> dict[str, LoadRequest]:
    """Return one request per customer, with the ids of all its requests."""
    merged: dict[str, LoadRequest] = {}
    for request in requests:
        held = merged.get(request.customer_id)
        merged[request.customer_id] = (
            request
            if held is None
            else LoadRequest(
                customer_id=request.customer_id,
                message_ids=held.message_ids | request.message_ids,
                order_ids=held.order_ids | request.order_ids,
            )
        )
    return merged


@dataclass(frozen=True)
class OutboxEntry:
    """One output waiting to be published: written with the state, removed once sent."""

    output_id: str
    topic: str
    """The logical output topic (``loyalty.tier-changes`` ...); the worker adds its namespace."""
    key: str
    value: bytes
    written_at: datetime | None = None
    """When the batch that wrote it ran (its clock reading); ``None`` for entries stored before
    the field existed, which count as written long ago. The scheduler republishes an entry only
    once it is older than ``LOYALTY_OUTBOX_GRACE`` (the worker that wrote it publishes it)."""


@dataclass(frozen=True)
class StoredCustomer:
    """A customer as loaded: the hydrated state plus what the store keeps beside it.

    ``state`` carries the hot document's orders plus the archived ones the request referenced,
    and (once the state has the field) ``known_ids``. ``hot_ring`` and ``hot_order_ids`` record
    what the document itself held, so that the save can tell what moves to the archive.
    """

    state: CustomerState
    version: int
    """The document's version; a save succeeds only if it is still this."""
    offsets: Mapping[TopicPartition, int]
    """Highest offset applied per input topic-partition."""
    known_ids: frozenset[str] = frozenset()
    """Of the requested message ids, those found in the id archive."""
    outbox: tuple[OutboxEntry, ...] = ()
    hot_ring: tuple[str, ...] = ()
    hot_order_ids: frozenset[str] = frozenset()
    restored_order_ids: frozenset[str] = frozenset()
    """Orders put back from the archive for this load (not in the hot document)."""

    @property
    def customer_id(self) -> str:
        """The customer's id."""
        return self.state.customer_id

    def applied_offset(self, tp: TopicPartition) -> int:
        """Highest offset applied from this topic-partition, -1 when none."""
        return self.offsets.get(tp, -1)


@dataclass(frozen=True)
class ActivityRecord:
    """An activity entry with the import batch and row it came from (for batch status)."""

    entry: ActivityEntry
    batch_id: str | None = None
    row: int | None = None


@dataclass(frozen=True)
class CustomerWrite:
    """Everything one batch changes for one customer, written in one atomic update.

    ``loaded`` is the customer as loaded for this batch (``None`` creates the customer and
    fails if it exists). ``offsets`` are the highest offsets this batch applied (merged with the
    stored ones by maximum). ``applied_ids`` are the ids the rules remembered in this batch
    (``models.decide.applied_keys`` of each applied message, in order). Ids that fell off the
    state's ring and that the document held when loaded are archived before the update; those
    applied in this same batch are not committed yet, so they stay in the document and a later
    save archives them (the store works this out; ``Decision.forgotten_ids`` need not be passed).
    """

    state: CustomerState
    loaded: StoredCustomer | None
    outbox: tuple[OutboxEntry, ...] = ()
    offsets: Mapping[TopicPartition, int] = field(default_factory=dict)
    activity: tuple[ActivityRecord, ...] = ()
    applied_ids: tuple[str, ...] = ()

    @property
    def customer_id(self) -> str:
        """The customer's id."""
        return self.state.customer_id


@dataclass(frozen=True)
class SaveResult:
    """What a batch save did, per customer.

    ``conflicts``: the document changed since it was loaded (or, for a new customer, it exists
    now): nothing of that customer was written; reload and redo. ``email_taken``: customer id ->
    the customer who holds the email (nothing written; redo with the owner known so the rules
    refuse the upsert as ``email_taken``).
    """

    saved: frozenset[str] = frozenset()
    conflicts: frozenset[str] = frozenset()
    email_taken: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PendingOutbox:
    """A customer's unsent outputs, oldest first."""

    customer_id: str
    entries: tuple[OutboxEntry, ...]


@dataclass(frozen=True)
class ParkedMessage:
    """A raw input message for a customer that does not exist yet.

    Identified by its topic, partition and offset: parking a redelivered message again is a
    no-op. ``parked_at`` orders the messages of one customer (arrival order; ties keep the
    order of the ``park`` call) and lets old ones be refused.
    """

    customer_id: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    parked_at: datetime


@dataclass(frozen=True, order=True)
class DueCustomer:
    """A customer whose ``next_due_at`` has passed; the pair is also the paging cursor."""

    due_at: datetime
    customer_id: str


@dataclass(frozen=True)
class ActivityCursor:
    """Where a page of activity (newest first) ended."""

    at: datetime
    activity_id: str


@dataclass(frozen=True)
class ActivityPage:
    """Activity entries newest first; ``next`` continues after the last one (None: no more)."""

    entries: tuple[ActivityEntry, ...]
    next: ActivityCursor | None


@dataclass(frozen=True)
class BatchRefusal:
    """One refused row of an import batch."""

    row: int
    code: str
    reason: str


@dataclass(frozen=True)
class BatchActivity:
    """What the activity log says an import batch did: rows applied and rows refused."""

    batch_id: str
    applied: int
    refused: int
    refusals: tuple[BatchRefusal, ...]


@dataclass(frozen=True)
class CustomerFilter:
    """Which customers a listing shows; a field left ``None`` matches every customer."""

    tier: str | None = None
    status: str | None = None
    email_contains: str | None = None
    """A part of the email, compared ignoring letter case."""


@dataclass(frozen=True)
class ListCursor:
    """Where a page of a customer listing (newest first) ended."""

    joined_at: datetime
    customer_id: str


@dataclass(frozen=True)
class CustomerPage:
    """Customers newest first; ``next`` continues after the last one (None: no more)."""

    customers: tuple[CustomerState, ...]
    next: ListCursor | None


class CustomerRepository(Protocol):
    """The customer store: one document per customer, version-checked batch writes."""

    async def load_many(self, requests: Sequence[LoadRequest]) -> dict[str, StoredCustomer]:
        """Load these customers (absent ids are missing from the result), hydrated for a batch."""
        ...

    async def get(self, customer_id: str) -> StoredCustomer | None:
        """Load one customer as stored (hot orders only), for the read interface."""
        ...

    async def save_batch(self, writes: Sequence[CustomerWrite]) -> SaveResult:
        """Write a batch: archive first, then one bulk write with a version check per customer."""
        ...

    async def append_activity(self, customer_id: str, records: Sequence[ActivityRecord]) -> None:
        """Record activity entries; one with an id already recorded is left as it is."""
        ...

    async def activity(
        self, customer_id: str, *, limit: int = 50, before: ActivityCursor | None = None
    ) -> ActivityPage:
        """Return one page of the customer's activity, newest first."""
        ...

    async def batch_activity(self, batch_id: str) -> BatchActivity:
        """Count the rows of an import batch that were applied and refused."""
        ...

    async def pending_outbox(
        self,
        *,
        customer_ids: Collection[str] | None = None,
        written_before: datetime | None = None,
        limit: int = 1000,
    ) -> list[PendingOutbox]:
        """Return customers with unsent outputs (all, or only these), at most ``limit``.

        With ``written_before``, only entries written before it (or with no ``written_at``)
        are returned, and only customers holding at least one such entry.
        """
        ...

    async def mark_sent(self, sent: Mapping[str, Collection[str]]) -> None:
        """Remove published outputs (customer id -> output ids) from the outboxes."""
        ...

    async def park(self, messages: Sequence[ParkedMessage]) -> None:
        """Keep messages for customers not known yet; parking one again is a no-op."""
        ...

    async def parked_for(self, customer_ids: Collection[str]) -> dict[str, list[ParkedMessage]]:
        """Return the parked messages of these customers, in arrival order."""
        ...

    async def parked_before(self, cutoff: datetime, *, limit: int = 500) -> list[ParkedMessage]:
        """Return messages parked before ``cutoff``, oldest first (to refuse them)."""
        ...

    async def unpark(self, messages: Sequence[ParkedMessage]) -> None:
        """Forget these parked messages (applied or refused)."""
        ...

    async def erase_personal_data(self, customer_id: str) -> None:
        """Blank the customer's activity notes and drop their parked messages (idempotent)."""
        ...

    async def parked_count(self) -> int:
        """Return how many messages are parked (a metric)."""
        ...

    async def due_customers(
        self, at: datetime, *, after: DueCustomer | None = None, limit: int = 500
    ) -> list[DueCustomer]:
        """Return customers due at or before ``at``, by due time then id, after ``after``."""
        ...

    def group_members(self, group_id: str) -> AsyncIterator[str]:
        """Stream the ids of the customers in this group, from a cursor."""
        ...

    async def customer_id_by_email(self, email: str) -> str | None:
        """Return the customer holding this email (compared case-insensitively), if any."""
        ...

    async def email_owners(self, emails: Collection[str]) -> dict[str, str]:
        """Map each normalised email (``strip().casefold()``) held by a customer to its owner."""
        ...

    async def customer_id_by_code(self, code: str) -> str | None:
        """Return the customer holding the reward grant with this code, if any."""
        ...

    def customer_ids(self) -> AsyncIterator[str]:
        """Stream every customer id, in id order (exports and listings)."""
        ...

    async def list_customers(
        self, where: CustomerFilter, *, after: ListCursor | None = None, limit: int = 50
    ) -> CustomerPage:
        """Return one page of customers, most recently joined first (then by id, descending)."""
        ...

    async def close(self) -> None:
        """Release the connection."""
        ...


def normalize_email(email: str) -> str:
    """Return the email as compared for uniqueness (the rules' ``email_key``)."""
    return email.strip().casefold()
