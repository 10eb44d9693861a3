"""The store's ceiling: the worker's round trips per batch, timed without Kafka and the rules.

The batches the worker would take from the pre-loaded topic are replayed against a seeded
database through the real repository: ``load_many`` (timed), the rules (not timed),
``save_batch`` and ``mark_sent`` (timed). A PyMongo command listener attributes the time to
each round trip (collection and command), so the report says which one costs what.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import monitoring

from cli.bench_load import Envelope, Seeder
from models.decide import applied_keys
from store.repository import CustomerRepository
from workers.batch import load_requests
from workers.fold import fold


@dataclass
class RoundTrip:
    """One kind of round trip: how many ran, the documents they carried, their server time."""

    count: int = 0
    seconds: float = 0.0
    docs: int = 0

    @property
    def docs_per_second(self) -> float:
        """Documents moved per second of this round trip's own time."""
        return self.docs / self.seconds if self.seconds else 0.0


class CommandTimer(monitoring.CommandListener):
    """Sums the duration of each (collection, command) the client runs while enabled."""

    def __init__(self) -> None:
        self.enabled = False
        self.call = ""
        """The repository call running now; labels its commands."""
        self.trips: dict[str, RoundTrip] = defaultdict(RoundTrip)
        self._pending: dict[int, tuple[str, int]] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        """Remember what the command is and how many documents it carries."""
        if not self.enabled:
            return
        name = event.command_name
        command = event.command
        collection = command.get(name)
        docs = 0
        for key in ("documents", "updates", "deletes"):
            docs += len(command.get(key) or [])
        if name == "find":
            ids = (command.get("filter") or {}).get("_id")
            docs = len(ids["$in"]) if isinstance(ids, dict) and "$in" in ids else 1
        self._pending[event.request_id] = (f"{self.call}: {name} {collection}", docs)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Add the command's duration to its round-trip kind."""
        self._finish(event.request_id, event.duration_micros)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Count failed commands too (a version conflict is part of the cost)."""
        self._finish(event.request_id, event.duration_micros)

    def _finish(self, request_id: int, micros: int) -> None:
        found = self._pending.pop(request_id, None)
        if found is None:
            return
        label, docs = found
        trip = self.trips[label]
        trip.count += 1
        trip.seconds += micros / 1e6
        trip.docs += docs


@dataclass
class StoreResult:
    """The store's ceiling for the worker's batches."""

    events: int
    batches: int
    seconds: float
    """Wall time of the timed calls (load, save, mark sent), the rules excluded."""
    calls: dict[str, float] = field(default_factory=dict)
    """Wall seconds per repository call."""
    trips: dict[str, RoundTrip] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        """Events per second the store sustains for the worker's batches."""
        return self.events / self.seconds if self.seconds else 0.0


async def measure_store(
    repository: CustomerRepository,
    timer: CommandTimer,
    seeder: Seeder,
    events: Sequence[Envelope],
    *,
    batch_size: int,
    now: datetime,
) -> StoreResult:
    """Replay the events in worker-sized batches; time the repository calls only."""
    calls: dict[str, float] = defaultdict(float)

    async def timed(name: str, call: Awaitable[Any]) -> Any:
        timer.enabled = True
        timer.call = name
        started = time.perf_counter()
        try:
            return await call
        finally:
            calls[name] += time.perf_counter() - started
            timer.enabled = False

    batches = 0
    for start in range(0, len(events), batch_size):
        records = seeder.records(events[start : start + batch_size])
        requests = load_requests(records, applied_keys)
        loaded = await timed("load_many", repository.load_many(requests))
        result = fold(
            records,
            loaded,
            decide=seeder.rules,
            applied_keys=applied_keys,
            email_owners={},
            now=now,
        )
        await timed("save_batch", repository.save_batch(result.writes))
        sent = {w.customer_id: [e.output_id for e in w.outbox] for w in result.writes if w.outbox}
        if sent:
            await timed("mark_sent", repository.mark_sent(sent))
        batches += 1
    return StoreResult(
        events=len(events),
        batches=batches,
        seconds=sum(calls.values()),
        calls=dict(calls),
        trips=dict(timer.trips),
    )
