"""The worker's pure part: a batch of decoded records + the loaded customers -> what to write.

No I/O, no clock (``now`` is bound into ``decide`` by the caller), no await. ``fold`` walks the
records in the order given (offset order per partition, so per customer), skips what the
customer already applied (an offset at or below the stored one for its topic-partition), asks
the rules about the rest, and returns one ``CustomerWrite`` per changed customer (state, outbox,
offsets, activity and remembered ids: one atomic update each), plus the records to park, the
dead letters and one ``Outcome`` per record for logs and metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from models.decide import Decision
from models.messages import CustomerUpserted, InputMessage
from models.outputs import Cause, OutputMessage, derive_id
from models.state import ActivityEntry, CustomerState
from store.repository import (
    ActivityRecord,
    CustomerWrite,
    OutboxEntry,
    ParkedMessage,
    StoredCustomer,
    TopicPartition,
    normalize_email,
)
from topics.codec import MessageError, parse_message, to_json
from topics.names import Topics
from topics.routing import DeadLetter, output_topic, route_problem

Decider = Callable[[CustomerState | None, InputMessage], Decision]
"""``decide`` with the program, the clock reading and the keys bound (see workers.batch)."""

Kind = Literal[
    "applied", "refused", "duplicate", "skipped", "parked", "dead_letter", "waiting", "fanned_out"
]
"""What happened to one record (``waiting``: a parked message whose customer still is unknown)."""

_CONTRACT = Topics()


@dataclass(frozen=True)
class Record:
    """One input record as consumed (or as parked), decoded once.

    ``topic`` is the topic it was read from (namespace included), ``source`` the contract's
    name of that topic (what the customer document's offsets are keyed by).
    """

    topic: str
    source: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    message: InputMessage | None = None
    error: MessageError | None = None
    parked: ParkedMessage | None = None

    @property
    def tp(self) -> TopicPartition:
        """The contract topic and partition the offset belongs to."""
        return (self.source, self.partition)

    @property
    def customer_id(self) -> str | None:
        """The customer the message concerns (None when it did not decode)."""
        return self.message.customer_id if self.message is not None else None


def decode(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    *,
    topics: Topics,
    parked: ParkedMessage | None = None,
    routed: bool = True,
) -> Record:
    """Decode one raw record; a bad one keeps its ``MessageError`` (it goes to dead letters).

    ``routed``: the record came from an input topic, so its type must belong there and its key
    must be its customer (``topics.routing.route_problem``). Only a tool that feeds records
    through the rules from elsewhere (the benchmarks' seeder) turns that off.
    """
    raw = value if value is not None else b""
    record = Record(topic, topics.contract_name(topic), partition, offset, key, raw, parked=parked)
    try:
        message = parse_message(raw)
    except MessageError as exc:
        return replace(record, error=exc)
    problem = (
        route_problem(message.type, message.customer_id, record.source, key) if routed else None
    )
    if problem is not None:
        return replace(record, error=MessageError(*problem))
    return replace(record, message=message)


@dataclass(frozen=True)
class Outcome:
    """What one record did: for the structured log line and the metrics."""

    record: Record
    kind: Kind
    code: str | None = None
    reason: str | None = None

    @property
    def message_type(self) -> str:
        """The record's type, or ``invalid`` when it did not decode."""
        return self.record.message.type if self.record.message is not None else "invalid"


@dataclass
class Fold:
    """Everything a batch does, ready for the store and the producer."""

    writes: list[CustomerWrite] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    park: list[ParkedMessage] = field(default_factory=list)
    drained: list[ParkedMessage] = field(default_factory=list)
    """Parked messages this fold applied or found already applied: unpark once written."""
    refusals: dict[str, list[ActivityRecord]] = field(default_factory=dict)
    """Refusals logged on a customer without changing its state (``email_taken``)."""
    created: set[str] = field(default_factory=set)
    outcomes: list[Outcome] = field(default_factory=list)


@dataclass
class _Customer:
    """One customer's running state while the batch is folded."""

    loaded: StoredCustomer | None
    state: CustomerState | None
    outbox: list[OutboxEntry] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    activity: list[ActivityRecord] = field(default_factory=list)
    applied_ids: list[str] = field(default_factory=list)
    drained: list[ParkedMessage] = field(default_factory=list)
    changed: bool = False

    def applied_offset(self, tp: TopicPartition) -> int:
        stored = self.loaded.applied_offset(tp) if self.loaded is not None else -1
        return max(stored, self.offsets.get(tp, -1))


def outbox_entry(output: OutputMessage, written_at: datetime) -> OutboxEntry:
    """Return the outbox entry of one output (contract topic; the publisher adds the namespace)."""
    return OutboxEntry(
        output_id=output.id,
        topic=output_topic(output.type, _CONTRACT),
        key=output.customer_id,
        value=to_json(output),
        written_at=written_at,
    )


def dead_letter(record: Record, code: str, message: str) -> DeadLetter:
    """Return the dead-letter record of a rejected input."""
    return DeadLetter.for_record(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        error_code=code,
        error_message=message,
    )


def fold(
    records: Sequence[Record],
    loaded: Mapping[str, StoredCustomer],
    *,
    decide: Decider,
    applied_keys: Callable[[InputMessage], tuple[str, ...]],
    email_owners: Mapping[str, str],
    now: datetime,
) -> Fold:
    """Fold a batch of records over the loaded customers; see the module docstring."""
    folder = Folder(loaded, decide, applied_keys, dict(email_owners), now)
    for record in records:
        folder.out.outcomes.append(folder.apply(record))
    return folder.finish()


@dataclass
class Folder:
    """The running fold of one batch: ``apply`` each record in order, then ``finish``."""

    loaded: Mapping[str, StoredCustomer]
    decide: Decider
    applied_keys: Callable[[InputMessage], tuple[str, ...]]
    owners: dict[str, str]
    now: datetime
    """The batch's clock reading: when its records are parked and its outputs written."""
    out: Fold = field(default_factory=Fold)
    customers: dict[str, _Customer] = field(default_factory=dict)

    def customer(self, customer_id: str) -> _Customer:
        if customer_id not in self.customers:
            stored = self.loaded.get(customer_id)
            # The store hands the state over hydrated: archived orders and known ids are in.
            state = stored.state if stored is not None else None
            self.customers[customer_id] = _Customer(loaded=stored, state=state)
        return self.customers[customer_id]

    def apply(self, record: Record) -> Outcome:
        """Apply one record to its customer's running state; return what happened."""
        message = record.message
        if message is None:
            error = record.error or MessageError("invalid_message", "message did not decode")
            return self.reject(record, error.code, error.message, None)
        customer = self.customer(message.customer_id)
        # Redelivery: this partition already reached this offset for the customer. Parked
        # records skip the check (they may be drained after later offsets were applied): the
        # rules' id memory covers them.
        if record.parked is None and record.offset <= customer.applied_offset(record.tp):
            return Outcome(record, "skipped")
        owner = _email_taken(message, customer, self.owners)
        if owner is not None:
            return self.refuse_taken(record, message, customer, owner)
        return self.decided(record, message, customer, self.decide(customer.state, message))

    def decided(
        self, record: Record, message: InputMessage, customer: _Customer, decision: Decision
    ) -> Outcome:
        """Take the rules' decision into the customer's running state."""
        if decision.state is None:
            rejection = decision.rejection
            code = rejection.code if rejection is not None else "unknown_customer"
            if code != "unknown_customer":
                return self.reject(record, code, rejection.reason if rejection else "", customer)
            if record.parked is not None:
                return Outcome(record, "waiting", code)
            self.out.park.append(_parked(record, message.customer_id, self.now))
            return Outcome(record, "parked", code)
        if record.parked is not None:
            customer.drained.append(record.parked)
        customer.offsets[record.tp] = max(record.offset, customer.offsets.get(record.tp, -1))
        if decision.duplicate:
            return Outcome(record, "duplicate")
        customer.state = decision.state
        customer.changed = True
        customer.outbox.extend(outbox_entry(output, self.now) for output in decision.outputs)
        customer.activity.extend(_activity(entry, message) for entry in decision.activity)
        customer.applied_ids.extend(self.applied_keys(message))
        if isinstance(message, CustomerUpserted):
            self.owners[normalize_email(message.data.email)] = message.customer_id
        if decision.rejection is not None:
            return Outcome(record, "refused", decision.rejection.code, decision.rejection.reason)
        return Outcome(record, "applied")

    def reject(self, record: Record, code: str, reason: str, customer: _Customer | None) -> Outcome:
        """Send a record to the dead letters (unreadable, or refused with no customer)."""
        self.out.dead_letters.append(dead_letter(record, code, reason))
        if record.parked is not None and customer is not None:
            customer.drained.append(record.parked)
        return Outcome(record, "dead_letter", code, reason)

    def refuse_taken(
        self, record: Record, message: InputMessage, customer: _Customer, owner: str
    ) -> Outcome:
        """Refuse an upsert whose email another customer holds."""
        reason = (
            f"email is already held by customer {owner!r}; emails are unique per program "
            "(compared case-insensitively): change that customer's email first, or send this "
            "one with another"
        )
        if customer.state is None:
            return self.reject(record, "email_taken", reason, customer)
        entry = ActivityEntry(
            activity_id=derive_id(message.id, "activity", "rejected"),
            at=message.occurred_at,
            kind="rejected",
            cause=Cause(type=message.type, id=message.id),
            details={"code": "email_taken", "reason": reason},
        )
        self.out.refusals.setdefault(message.customer_id, []).append(_activity(entry, message))
        return Outcome(record, "refused", "email_taken", reason)

    def finish(self) -> Fold:
        """Return the fold with one write per changed customer."""
        for customer_id, customer in self.customers.items():
            if customer.changed and customer.state is not None:
                if customer.loaded is None:
                    self.out.created.add(customer_id)
                self.out.writes.append(
                    CustomerWrite(
                        state=customer.state,
                        loaded=customer.loaded,
                        outbox=tuple(customer.outbox),
                        offsets=dict(customer.offsets),
                        activity=tuple(customer.activity),
                        applied_ids=tuple(customer.applied_ids),
                    )
                )
            self.out.drained.extend(customer.drained)
        return self.out


def _email_taken(
    message: InputMessage, customer: _Customer, owners: Mapping[str, str]
) -> str | None:
    """Return who holds the email an upsert asks for, when that is another customer."""
    if not isinstance(message, CustomerUpserted):
        return None
    owner = owners.get(normalize_email(message.data.email))
    if owner is None or owner == message.customer_id:
        return None
    if customer.state is not None and customer.state.has_applied(message.id):
        return None  # a redelivery of an upsert applied before the email moved on
    return owner


def _activity(entry: ActivityEntry, message: InputMessage) -> ActivityRecord:
    batch = message.batch
    return ActivityRecord(
        entry=entry,
        batch_id=batch.id if batch is not None else None,
        row=batch.row if batch is not None else None,
    )


def _parked(record: Record, customer_id: str, at: datetime) -> ParkedMessage:
    return ParkedMessage(
        customer_id=customer_id,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        parked_at=at,
    )
