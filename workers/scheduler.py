"""Time as data: the leader's periodic run that turns passed due dates into input events.

Each run (a faust timer on the leader, see ``workers.app``):

1. pages through customers whose ``next_due_at`` has passed (indexed query, bounded pages)
   and publishes a ``points.expire`` and/or ``tier.expire`` event for each, keyed by the
   customer, onto the input topics, so they go through the same path as every other message.
   Event ids derive from the customer and the due time: a late or repeated run publishes the
   same ids, which the rules treat as duplicates; ``occurred_at`` is the due time, so a replay
   gives the same state;
2. applies parked messages whose customer exists by now (a park that raced the customer's
   creation) and refuses those parked longer than ``LOYALTY_PARK_TIMEOUT`` as
   ``unknown_customer`` on the dead-letter topic;
3. republishes the outbox backlog: outputs saved but not marked sent ``LOYALTY_OUTBOX_GRACE``
   after their batch wrote them. Younger ones are being published by the worker that wrote them
   (any worker of the group: the leader's sweep reads every customer), so they are left alone;
   what a crash left behind is republished at the next start, or by this sweep once due.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import structlog

from models.messages import (
    SYSTEM_SOURCE,
    ConfirmPoints,
    ConfirmPointsData,
    ExpirePoints,
    ExpirePointsData,
    ExpireTier,
    ExpireTierData,
    SendReminders,
    SendRemindersData,
)
from models.outputs import derive_id
from models.state import CustomerState
from store.repository import CustomerRepository, DueCustomer, LoadRequest, ParkedMessage
from topics.codec import encode_key, to_json
from topics.names import Topics
from topics.routing import DeadLetter
from workers.batch import Pipeline
from workers.health import Health, retrying
from workers.outbox import Outgoing, Publisher

log = structlog.get_logger("loyalty.scheduler")
T = TypeVar("T")

MAX_PAGES = 4
"""Due pages per run: events not applied by the next run are published again (same ids), so
a mass expiry is spread over runs instead of flooding the topics with repeats."""
PARK_GRACE = timedelta(seconds=30)
"""A parked message younger than this is left to the agents (its customer may be arriving)."""


@dataclass(frozen=True)
class RunReport:
    """What one scheduler run did."""

    time_events: int
    parked_applied: int
    parked_refused: int
    republished: int


TimeEvent = ExpirePoints | ExpireTier | ConfirmPoints | SendReminders


def time_events(state: CustomerState, due_at: datetime, now: datetime) -> list[TimeEvent]:
    """Return the time events a customer needs for what fell due by ``now``.

    One per kind that is due: lots expiring (``points.expire``), pending points to confirm
    (``points.confirm``), reminders (``reminder.due``), tier endings and reviews
    (``tier.expire``). Any one of them settles everything due by its time (the rules settle
    due times before every message), so a kind this list misses is still handled; a
    ``tier.expire`` goes when nothing else is recognised.
    """
    events: list[TimeEvent] = []
    base = f"time:{state.customer_id}"
    stamp = due_at.isoformat()
    envelope: dict[str, Any] = {
        "customer_id": state.customer_id,
        "occurred_at": due_at,
        "source": SYSTEM_SOURCE,
    }
    if any(lot.expires_at is not None and lot.expires_at <= now for lot in state.points_lots):
        events.append(
            ExpirePoints(
                id=derive_id(base, "points.expire", stamp),
                **envelope,
                data=ExpirePointsData(due_at=due_at),
            )
        )
    pending = state.points_pending_lots
    if pending and pending[0].confirm_at <= now:
        events.append(
            ConfirmPoints(
                id=derive_id(base, "points.confirm", stamp),
                **envelope,
                data=ConfirmPointsData(due_at=due_at),
            )
        )
    if state.reminder_at is not None and state.reminder_at <= now:
        events.append(
            SendReminders(
                id=derive_id(base, "reminder.due", stamp),
                **envelope,
                data=SendRemindersData(due_at=due_at),
            )
        )
    tier_due = [
        t
        for t in (state.tier_expires_at, state.tier_hold_until, state.tier_review_at)
        if t is not None and t <= now
    ]
    if tier_due or not events:
        events.append(
            ExpireTier(
                id=derive_id(base, "tier.expire", stamp),
                **envelope,
                data=ExpireTierData(due_at=due_at, tier=state.tier),
            )
        )
    return events


class Scheduler:
    """One run of the periodic work; see the module docstring."""

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        repository: CustomerRepository,
        publisher: Publisher,
        topics: Topics,
        clock: Callable[[], datetime],
        health: Health,
        page: int,
        park_timeout: timedelta,
        outbox_grace: timedelta = timedelta(seconds=60),
    ) -> None:
        self.pipeline, self.repository, self.publisher = pipeline, repository, publisher
        self.topics, self.clock, self.health = topics, clock, health
        self.page, self.park_timeout, self.outbox_grace = page, park_timeout, outbox_grace

    async def run_once(self) -> RunReport:
        """Do one run: time events, parked messages, outbox backlog."""
        now = self.clock()
        events = await self.publish_time_events(now)
        applied, refused = await self.sweep_parked(now)
        republished = await self.pipeline.outbox.republish_backlog(
            limit=self.page, written_before=now - self.outbox_grace
        )
        parked = await self._store(self.repository.parked_count, "count parked")
        self.pipeline.metrics.parked.set(parked)
        report = RunReport(events, applied, refused, republished)
        if events or applied or refused or republished:
            log.info("scheduler run", **report.__dict__)
        return report

    async def publish_time_events(self, now: datetime) -> int:
        """Publish the time events of every customer due by ``now``, page by page."""
        after: DueCustomer | None = None
        published = 0
        for _ in range(MAX_PAGES):
            due = await self._store(
                partial(self.repository.due_customers, now, after=after, limit=self.page),
                "query due customers",
            )
            if not due:
                return published
            requests = [LoadRequest(customer_id=d.customer_id) for d in due]
            loaded = await self._store(partial(self.repository.load_many, requests), "load due")
            outgoing: list[Outgoing] = []
            for item in due:
                stored = loaded.get(item.customer_id)
                if stored is None or not stored.state.active:
                    continue
                for event in time_events(stored.state, item.due_at, now):
                    topic = (
                        self.topics.adjustments
                        if not isinstance(event, ExpireTier)
                        else self.topics.tier_commands
                    )
                    outgoing.append(Outgoing(topic, encode_key(event.customer_id), to_json(event)))
            await self._publish(outgoing, "publish time events")
            published += len(outgoing)
            if len(due) < self.page:
                return published
            after = due[-1]
        return published

    async def sweep_parked(self, now: datetime) -> tuple[int, int]:
        """Apply parked messages whose customer exists; refuse those parked too long."""
        parked = await self._store(
            lambda: self.repository.parked_before(now - PARK_GRACE, limit=self.page),
            "read parked messages",
        )
        if not parked:
            return 0, 0
        ids = {p.customer_id for p in parked}
        requests = [LoadRequest(customer_id=c) for c in ids]
        existing = await self._store(lambda: self.repository.load_many(requests), "load parked")
        if existing:
            await self.pipeline.drain(set(existing))
        expired = [
            p
            for p in parked
            if p.customer_id not in existing and p.parked_at <= now - self.park_timeout
        ]
        if expired:
            await self.refuse(expired)
        applied = sum(1 for p in parked if p.customer_id in existing)
        return applied, len(expired)

    async def refuse(self, expired: Sequence[ParkedMessage]) -> None:
        """Dead-letter parked messages whose customer never came, then forget them."""
        letters = []
        for p in expired:
            letter = DeadLetter.for_record(
                topic=p.topic,
                partition=p.partition,
                offset=p.offset,
                key=p.key,
                value=p.value,
                error_code="unknown_customer",
                error_message=(
                    f"no customer {p.customer_id!r} was created within "
                    f"{self.park_timeout} of this message; send customer.upserted for that "
                    "customer, then resend the message"
                ),
            )
            letters.append(Outgoing(self.topics.dead_letter, p.key, to_json(letter)))
            self.pipeline.metrics.dead_letters.labels(code="unknown_customer").inc()
        await self._publish(letters, "publish refused parked messages")
        await self._store(lambda: self.repository.unpark(expired), "unpark refused")
        log.info("parked messages refused", count=len(expired), code="unknown_customer")

    async def _publish(self, messages: Sequence[Outgoing], what: str) -> None:
        if messages:
            await retrying(
                lambda: self.publisher.publish(messages),
                what=what,
                dependency="kafka",
                health=self.health,
            )

    async def _store(self, operation: Callable[[], Awaitable[T]], what: str) -> T:
        return await retrying(operation, what=what, dependency="store", health=self.health)
