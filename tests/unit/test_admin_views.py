"""Customer export cells and batch status, on in-memory stores (pure)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from admin.batches import BatchRecord, MemoryBatchRecords, batch_status
from admin.imports import ImportReport
from admin.views import EXPORT_COLUMNS, FORMULA_STARTS, export_row, neutralise, write_export
from models.outputs import Cause
from models.state import ActivityEntry, CustomerState
from store.memory import MemoryCustomerRepository
from store.repository import ActivityRecord

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def state(cid: str, email: str, **fields) -> CustomerState:
    return CustomerState(
        customer_id=cid, email=email, email_normalized=email.casefold(), joined_at=T0, **fields
    )


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_cells_starting_like_a_formula_get_a_quote(start):
    assert neutralise(f"{start}SUM(A1)") == f"'{start}SUM(A1)"
    assert neutralise("plain") == "plain"


async def test_the_export_has_the_contract_columns_and_no_formula_cell():
    hostile = state(
        "=cmd|' /C calc'!A0",
        "+ana@example.com",
        first_name="@SUM(1+1)",
        last_name="-2+3",
        tier="Gold",
        lifetime_spend=Decimal("12.50"),
    )
    normal = state("c-2", "ben@example.com", first_name="Ben")

    async def customers() -> AsyncIterator[CustomerState]:
        for customer in (hostile, normal):
            yield customer

    out = io.StringIO()
    assert await write_export(out, customers()) == 2
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    for row in rows[1:]:
        assert not any(cell.startswith(FORMULA_STARTS) for cell in row), row
    assert rows[1][:4] == ["'=cmd|' /C calc'!A0", "'+ana@example.com", "'@SUM(1+1)", "'-2+3"]
    assert rows[1][7:] == ["Gold", "", "12.50"]
    assert export_row(normal)[5:7] == ["0", "0"]


def _record(
    batch: str,
    published: int,
    *,
    complete: bool = True,
    file: str = "tiers.csv",
    rows: int = 5,
    at: datetime = T0,
) -> BatchRecord:
    path = Path(file)
    report = ImportReport("tiers", path, batch, dry_run=False, rows=rows, valid=published)
    report.published = published
    report.rejected = rows - published
    report.rejected_rows_file = file.endswith(".rejected.csv")
    return BatchRecord.from_report(report, at, at if complete else None)


async def test_batch_status_counts_what_the_activity_log_says():
    repo = MemoryCustomerRepository()
    records = MemoryBatchRecords()
    await records.save(_record("b1", 3))

    def entry(row: int, kind: str, **details) -> ActivityRecord:
        cause = Cause(type="tier.change", id=f"b1:{row}")
        item = ActivityEntry(
            activity_id=f"a{row}{kind}", at=T0, kind=kind, cause=cause, details=details
        )
        return ActivityRecord(entry=item, batch_id="b1", row=row)

    await repo.append_activity("c-1", [entry(2, "tier_changed")])
    await repo.append_activity(
        "c-2", [entry(4, "rejected", code="customer_removed", reason="customer was removed")]
    )
    status = await batch_status("b1", records, repo)
    assert status is not None
    assert {k: status[k] for k in ("batch_id", "rows", "published", "applied", "refused")} == {
        "batch_id": "b1",
        "rows": 5,
        "published": 3,
        "applied": 1,
        "refused": 1,
    }
    assert status["refusals"] == [{"row": 4, "reason": "customer was removed"}]
    assert (status["pending"], status["done"], status["rejected"]) == (1, False, 2)

    await repo.append_activity("c-3", [entry(6, "tier_changed")])
    done = await batch_status("b1", records, repo)
    assert done is not None
    assert (done["applied"], done["pending"], done["done"]) == (2, 0, True)


async def test_an_unknown_batch_has_no_status():
    assert await batch_status("nope", MemoryBatchRecords(), MemoryCustomerRepository()) is None


async def test_a_rerun_counts_as_a_second_run():
    records = MemoryBatchRecords()
    await records.save(_record("b1", 3, complete=False))
    await records.save(_record("b1", 3))
    first = await records.get("b1")
    assert first is not None
    assert first.runs == 1  # the same run, finished
    later = BatchRecord(**{**first.__dict__, "started_at": datetime(2026, 3, 2, tzinfo=UTC)})
    await records.save(later)
    again = await records.get("b1")
    assert again is not None
    assert again.runs == 2


def _applied(row: int) -> ActivityRecord:
    cause = Cause(type="tier.change", id=f"b1:{row}")
    item = ActivityEntry(activity_id=f"a{row}", at=T0, kind="tier_changed", cause=cause)
    return ActivityRecord(entry=item, batch_id="b1", row=row)


async def test_a_rejected_rows_file_under_the_batch_id_adds_its_rows_to_the_batch():
    repo = MemoryCustomerRepository()
    records = MemoryBatchRecords()
    await records.save(_record("b1", 3))  # rows 2, 3, 4 published; rows 5, 6 rejected
    await repo.append_activity("c-1", [_applied(2), _applied(3), _applied(4)])
    later = datetime(2026, 3, 2, tzinfo=UTC)
    fixed = "tiers.csv.rejected.csv"
    await records.save(_record("b1", 2, file=fixed, rows=2, at=later, complete=False))
    waiting = await batch_status("b1", records, repo)
    assert waiting is not None
    assert {k: waiting[k] for k in ("rows", "published", "rejected", "applied", "pending")} == {
        "rows": 5,
        "published": 5,
        "rejected": 0,
        "applied": 3,
        "pending": 2,  # the re-imported rows 5 and 6: not yet applied
    }
    assert (waiting["done"], waiting["file"], waiting["runs"]) == (False, "tiers.csv", 2)

    await records.save(_record("b1", 2, file=fixed, rows=2, at=later))  # the same run, finished
    await repo.append_activity("c-2", [_applied(5), _applied(6)])
    done = await batch_status("b1", records, repo)
    assert done is not None
    assert (done["published"], done["applied"], done["pending"], done["done"]) == (5, 5, 0, True)
    assert done["rejected_rows_files"] == [{"file": fixed, "published": 2, "complete": True}]

    again = datetime(2026, 3, 3, tzinfo=UTC)  # the same fixed file once more: no new rows
    await records.save(_record("b1", 2, file=fixed, rows=2, at=again))
    repeated = await batch_status("b1", records, repo)
    assert repeated is not None
    assert (repeated["published"], repeated["pending"], repeated["runs"]) == (5, 0, 3)

    await records.save(_record("b1", 3, at=datetime(2026, 3, 4, tzinfo=UTC)))  # the first file
    rerun = await batch_status("b1", records, repo)
    assert rerun is not None
    assert (rerun["published"], rerun["rejected"], rerun["rejected_rows_files"]) == (3, 2, [])
