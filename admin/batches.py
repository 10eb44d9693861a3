"""Import batch records and ``import status``: what was published, what the workers did.

The import keeps one record per batch (rows read, rows published, rows rejected at import);
the workers' activity entries carry the batch id and row, so applied and refused rows are
counted from the activity log (``CustomerRepository.batch_activity``). A fixed rejected-rows
file imported under the batch's id publishes rows the batch had rejected (under their original
numbers): its run is kept beside the record (``FollowUp``) and its rows move from rejected to
published, so ``pending`` still waits for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from pymongo.asynchronous.collection import AsyncCollection

from admin.imports import ImportReport
from models.values import format_timestamp

BATCHES_COLLECTION = "import_batches"


@dataclass(frozen=True)
class FollowUp:
    """A run of a rejected-rows file under the batch: what it published of the rejected rows."""

    file: str
    published: int
    complete: bool


@dataclass(frozen=True)
class BatchRecord:
    """One import batch as last run (a re-run with the same batch id replaces the counts),
    plus the runs of its rejected-rows files (``follow_ups``, one per file name)."""

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
    rejected_rows_file: bool = False
    follow_ups: tuple[FollowUp, ...] = ()

    @property
    def published_in_all(self) -> int:
        """Rows published by the batch's file and by its rejected-rows files."""
        return self.published + sum(run.published for run in self.follow_ups)

    @property
    def rejected_still(self) -> int:
        """Rows rejected at import that no rejected-rows file has published since."""
        return max(self.rejected - sum(run.published for run in self.follow_ups), 0)

    @property
    def complete_in_all(self) -> bool:
        """Whether every run kept in the record published all its valid rows."""
        return self.complete and all(run.complete for run in self.follow_ups)

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
            rejected_rows_file=report.rejected_rows_file,
        )


def merged(earlier: BatchRecord | None, record: BatchRecord) -> BatchRecord:
    """Return what to keep after ``record``'s run: it replaces an earlier run of the batch's
    file, or, from a rejected-rows file, joins the earlier record as that file's follow-up."""
    if earlier is None:
        return record
    runs = earlier.runs + (0 if _same_instant(earlier.started_at, record.started_at) else 1)
    if not record.rejected_rows_file:
        return replace(record, runs=runs)
    run = FollowUp(record.file, record.published, record.complete)
    kept = tuple(other for other in earlier.follow_ups if other.file != run.file)
    return replace(
        earlier,
        runs=runs,
        started_at=record.started_at,
        finished_at=record.finished_at,
        follow_ups=(*kept, run),
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
        """Store the record (``merged`` with the batch's earlier one)."""
        self.records[record.batch_id] = merged(self.records.get(record.batch_id), record)

    async def get(self, batch_id: str) -> BatchRecord | None:
        """Return the record."""
        return self.records.get(batch_id)


class MongoBatchRecords:
    """Batch records in the ``import_batches`` collection (``_id`` is the batch id)."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection

    async def save(self, record: BatchRecord) -> None:
        """Upsert the record ``merged`` with the stored one (a new start time: one more run)."""
        fields = asdict(merged(await self.get(record.batch_id), record))
        fields.pop("batch_id")
        await self.collection.update_one({"_id": record.batch_id}, {"$set": fields}, upsert=True)

    async def get(self, batch_id: str) -> BatchRecord | None:
        """Return the record of this batch, if any."""
        document = await self.collection.find_one({"_id": batch_id})
        if document is None:
            return None
        document["batch_id"] = document.pop("_id")
        document["follow_ups"] = tuple(FollowUp(**run) for run in document.get("follow_ups", ()))
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
        "published": record.published_in_all if record else None,
        "applied": counts.applied,
        "refused": counts.refused,
        "refusals": [{"row": r.row, "reason": r.reason} for r in counts.refusals],
    }
    if record is not None:
        pending = max(record.published_in_all - counts.applied - counts.refused, 0)
        status |= {
            "kind": record.kind,
            "file": record.file,
            "rejected": record.rejected_still,
            "pending": pending,
            "done": record.complete_in_all and pending == 0,
            "imported_at": format_timestamp(record.finished_at) if record.finished_at else None,
            "runs": record.runs,
            "rejected_rows_files": [asdict(run) for run in record.follow_ups],
        }
    return status
