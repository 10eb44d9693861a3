"""The analytics example: every tier change appended to a JSON lines file, and its summary.

This is the pattern an analytics team copies to follow ``loyalty.tier-changes`` (see
docs/consumers.md): a consumer group of its own, a side effect made durable before the commit
(the lines are written and fsync'ed), and deduplication by message ``id`` (the ids already in
the file are read at start, so a redelivery after a crash appends nothing twice).

One line per change, the envelope's fields flattened for a data frame or ``jq``:
``{"id", "customer_id", "occurred_at", "from_tier", "to_tier", "direction", "cause_type",
"cause_id", "expires_at", "program_version", "batch_id"}``. JSON lines rather than Parquet:
appendable a line at a time without rewriting the file, readable by every tool, and no extra
dependency; pandas, DuckDB and Spark all load it directly.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from consumers.loop import DONE, Item, Outcome, Reject
from consumers.metrics import ConsumerMetrics
from topics import names

log = structlog.get_logger(__name__)


def tier_change_line(body: dict[str, Any]) -> dict[str, Any]:
    """Flatten a ``tier.changed`` message into one analytics row; raise ValueError if not one."""
    data = body.get("data")
    if not isinstance(data, dict) or "direction" not in data or "to_tier" not in data:
        raise ValueError("a tier.changed message needs data.direction and data.to_tier")
    cause: dict[str, Any] = data["cause"] if isinstance(data.get("cause"), dict) else {}
    batch: dict[str, Any] = body["batch"] if isinstance(body.get("batch"), dict) else {}
    return {
        "id": body["id"],
        "customer_id": body["customer_id"],
        "occurred_at": body.get("occurred_at"),
        "from_tier": data.get("from_tier"),
        "to_tier": data.get("to_tier"),
        "direction": data["direction"],
        "cause_type": cause.get("type"),
        "cause_id": cause.get("id"),
        "expires_at": data.get("expires_at"),
        "program_version": data.get("program_version"),
        "batch_id": batch.get("id"),
    }


def read_lines(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the rows of a tier-changes file; a torn last line (a crash mid-write) is skipped."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                break
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                yield row


class TierChangeLog:
    """The append-only file and the ids it already holds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ids: set[str] = set()
        self._loaded = False

    def load(self) -> None:
        """Read the ids already written; cut a torn last line so the next append starts clean."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            data = self.path.read_bytes()
            cut = data.rfind(b"\n") + 1
            if cut != len(data):
                with self.path.open("r+b") as handle:
                    handle.truncate(cut)
        self.ids = {str(row.get("id")) for row in read_lines(self.path)}
        self._loaded = True

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Append the rows not written yet and fsync, so they survive a crash before the commit."""
        if not self._loaded:
            self.load()
        fresh = [row for row in rows if row["id"] not in self.ids]
        if not fresh:
            return
        text = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in fresh)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        self.ids.update(row["id"] for row in fresh)


class TierChangeAnalytics:
    """Consumer of ``loyalty.tier-changes`` that appends every change to a JSON lines file."""

    name = "analytics"
    topics: tuple[str, ...] = (names.TIER_CHANGES,)
    types: frozenset[str] = frozenset({"tier.changed"})

    def __init__(self, log_file: TierChangeLog, metrics: ConsumerMetrics) -> None:
        self.log_file = log_file
        self.metrics = metrics

    async def ready(self) -> bool:
        """Return whether the file's folder is writable."""
        return os.access(self.log_file.path.parent, os.W_OK)

    async def process(self, items: Sequence[Item]) -> list[Outcome]:
        """Append the batch's changes in one write."""
        outcomes: list[Outcome] = []
        rows = []
        for item in items:
            try:
                row = tier_change_line(item.envelope.body)
            except ValueError as exc:
                outcomes.append(Reject("invalid_message", str(exc)))
                continue
            rows.append(row)
            outcomes.append(DONE)
        # File writes block; keep them off the event loop so heartbeats keep flowing.
        await asyncio.to_thread(self.log_file.append, rows)
        for row in rows:
            self.metrics.tier_changes.labels(row["direction"]).inc()
        return outcomes


@dataclass
class TierChangeSummary:
    """Counts over a tier-changes file."""

    changes: int = 0
    per_day: Counter[str] = field(default_factory=Counter)
    per_direction: Counter[str] = field(default_factory=Counter)
    per_cause: Counter[str] = field(default_factory=Counter)
    members_per_tier: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        """Return the summary as plain JSON (sorted keys, days ascending)."""
        return {
            "changes": self.changes,
            "per_day": dict(sorted(self.per_day.items())),
            "per_direction": dict(sorted(self.per_direction.items())),
            "per_cause": dict(sorted(self.per_cause.items())),
            "members_per_tier": dict(sorted(self.members_per_tier.items())),
        }


NO_TIER = "(no tier)"


def summarize(rows: Iterator[dict[str, Any]]) -> TierChangeSummary:
    """Count changes per day, direction and cause, and the members each tier holds now."""
    summary = TierChangeSummary()
    latest: dict[str, tuple[str, str]] = {}
    seen: set[str] = set()
    for row in rows:
        if row.get("id") in seen:
            continue
        seen.add(str(row.get("id")))
        summary.changes += 1
        occurred = str(row.get("occurred_at") or "")
        summary.per_day[occurred[:10] or "unknown"] += 1
        summary.per_direction[str(row.get("direction"))] += 1
        summary.per_cause[str(row.get("cause_type") or "unknown")] += 1
        customer = str(row.get("customer_id"))
        # The latest change per customer says where they are now (ties: file order).
        if customer not in latest or occurred >= latest[customer][0]:
            latest[customer] = (occurred, row.get("to_tier") or NO_TIER)
    summary.members_per_tier.update(tier for _, tier in latest.values())
    return summary
