"""Import batch records and ``import status``: what was published, what the workers did.

The import keeps one record per batch (rows read, rows published, rows rejected at import);
the workers' activity entries carry the batch id and row, so applied and refused rows are
counted from the activity log (``CustomerRepository.batch_activity``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

from pymongo.asynchronous.collection import AsyncCollection

from admin.imports import ImportReport
from models.values import format_timestamp

BATCHES_COLLECTION = "import_batches"


@dataclass(frozen=True)
class BatchRecord:
    """One import batch as last run (a re-run with the same batch id replaces the counts)."""

    batch_id: str
    kind: str
    file: str
    rows: int
    published: int
    rejected: int
    unknown_customers: int
    duplicates: int
    complete: bool
    started_at: datetime
    finished_at: datetime | None
    runs: int = 1
    actor: str | None = None

    @classmethod
    def from_report(
        cls, report: ImportReport, started_at: datetime, finished_at: datetime | None
    ) -> BatchRecord:
        """Return the record of a finished (or still running) import."""
        return cls(
            batch_id=report.batch_id,
            kind=report.kind,
            file=report.path.name,
            rows=report.rows,
            published=report.published,
            rejected=report.rejected,
            unknown_customers=report.unknown_customers,
            duplicates=report.duplicates,
            complete=finished_at is not None and report.complete,
            started_at=started_at,
            finished_at=finished_at,
        )


class BatchRecords(Protocol):
    """Where batch records are kept."""

    async def save(self, record: BatchRecord) -> None:
        """Store the record, replacing the counts of an earlier run of the same batch."""
        ...

    async def get(self, batch_id: str) -> BatchRecord | None:
        """Return the record of this batch, if it was ever imported."""
        ...


class MemoryBatchRecords:
    """Batch records in a dict (tests, dry runs)."""

    def __init__(self) -> None:
        self.records: dict[str, BatchRecord] = {}

    async def save(self, record: BatchRecord) -> None:
        """Store the record."""
        earlier = self.records.get(record.batch_id)
        runs = (
            (earlier.runs + (0 if earlier.started_at == record.started_at else 1)) if earlier else 1
        )
        self.records[record.batch_id] = _with_runs(record, runs)

    async def get(self, batch_id: str) -> BatchRecord | None:
        """Return the record."""
        return self.records.get(batch_id)


def _with_runs(record: BatchRecord, runs: int) -> BatchRecord:
    return BatchRecord(**{**asdict(record), "runs": runs})


class MongoBatchRecords:
    """Batch records in the ``import_batches`` collection (``_id`` is the batch id)."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection

    async def save(self, record: BatchRecord) -> None:
        """Upsert the record; a new run (new start time) counts one more run."""
        fields = asdict(record)
        fields.pop("batch_id")
        fields.pop("runs")
        existing = await self.collection.find_one(
            {"_id": record.batch_id}, {"started_at": 1, "runs": 1}
        )
        runs = 1
        if existing is not None:
            same_run = _same_instant(existing.get("started_at"), record.started_at)
            runs = int(existing.get("runs", 1)) + (0 if same_run else 1)
        await self.collection.update_one(
            {"_id": record.batch_id}, {"$set": {**fields, "runs": runs}}, upsert=True
        )

    async def get(self, batch_id: str) -> BatchRecord | None:
        """Return the record of this batch, if any."""
        document = await self.collection.find_one({"_id": batch_id})
        if document is None:
            return None
        document["batch_id"] = document.pop("_id")
        known = BatchRecord.__dataclass_fields__
        return BatchRecord(**{key: value for key, value in document.items() if key in known})


def _same_instant(stored: Any, started_at: datetime) -> bool:
    # BSON keeps milliseconds only.
    if not isinstance(stored, datetime):
        return False
    return abs((stored - started_at).total_seconds()) < 0.002


class Refusal(Protocol):
    """One refused row as the activity log has it."""

    @property
    def row(self) -> int: ...
    @property
    def reason(self) -> str: ...


class ActivityCounts(Protocol):
    """Rows of a batch applied and refused, from the activity log."""

    @property
    def applied(self) -> int: ...
    @property
    def refused(self) -> int: ...
    @property
    def refusals(self) -> Sequence[Refusal]: ...


class BatchActivitySource(Protocol):
    """The store's count of what the workers did with a batch."""

    async def batch_activity(self, batch_id: str) -> ActivityCounts:
        """Count the applied and refused rows of an import batch."""
        ...


async def batch_status(
    batch_id: str, records: BatchRecords, activity: BatchActivitySource
) -> dict[str, Any] | None:
    """Return the contract's status of a batch plus its own fields; None if it is unknown."""
    record = await records.get(batch_id)
    counts = await activity.batch_activity(batch_id)
    if record is None and counts.applied == 0 and counts.refused == 0:
        return None
    status: dict[str, Any] = {
        "batch_id": batch_id,
        "rows": record.rows if record else None,
        "published": record.published if record else None,
        "applied": counts.applied,
        "refused": counts.refused,
        "refusals": [{"row": r.row, "reason": r.reason} for r in counts.refusals],
    }
    if record is not None:
        pending = max(record.published - counts.applied - counts.refused, 0)
        status |= {
            "kind": record.kind,
            "file": record.file,
            "rejected": record.rejected,
            "pending": pending,
            "done": record.complete and pending == 0,
            "imported_at": format_timestamp(record.finished_at) if record.finished_at else None,
            "runs": record.runs,
        }
    return status
