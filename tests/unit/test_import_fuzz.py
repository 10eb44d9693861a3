"""Generated hostile CSV files through the import with an in-memory directory and sink.

Each row of a generated file knows its fate (tests/hostile_csv.py): every bad row must be in
the rejected-rows file with its row number and a reason that says what is wrong, every good
row published exactly once with its values verbatim, and a file that cannot be read at all
must fail with one error that says why, before anything is published. A latin-1 or cp1252
file is imported twice: as UTF-8 (its rows that are not ASCII are rejected) and with
``--encoding`` of its encoding (they import too, verbatim).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Collection
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from admin.csvtext import UTF_8, HeaderError, TextEncoding, text_encoding
from admin.imports import Delivered, ImportOptions, ImportReport, run_import
from tests.hostile_csv import UNREADABLE, CsvCase, People, csv_case, rejected_rows

PEOPLE = People(
    tuple(f"known-{n}@example.com" for n in range(40)),
    tuple(f"nobody-{n}@example.com" for n in range(40)),
)
OWNERS = {email: f"c-{n}" for n, email in enumerate(PEOPLE.known)}


class Directory:
    async def email_owners(self, emails: Collection[str]) -> dict[str, str]:
        return {e: OWNERS[e] for e in emails if e in OWNERS}


class Sink:
    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.waiting: list[Delivered] = []

    async def send(self, topic: str, key: bytes, value: bytes, delivered: Delivered) -> None:
        self.sent.append(json.loads(value))
        self.waiting.append(delivered)

    async def flush(self) -> None:
        for delivered in self.waiting:
            delivered(True)
        self.waiting.clear()


def import_file(path: Path, sink: Sink, encoding: TextEncoding = UTF_8) -> ImportReport:
    options = ImportOptions(
        "points", path, (), batch_id="fuzz", encoding=encoding, lookup_batch=3, parse_chunk=4
    )
    return asyncio.run(run_import(options, Directory(), sink))


def check_case(
    case: CsvCase, path: Path, sink: Sink, report: ImportReport, *, own_encoding: bool = False
) -> None:
    """Every row where its fate says, once; see the module docstring."""
    rejected = rejected_rows(path, case.delimiter)
    expected = case.fate("rejected", own_encoding=own_encoding)
    assert sorted(rejected) == sorted(expected)
    for row, spec in expected.items():
        assert spec.reason.casefold() in rejected[row].casefold(), (row, rejected[row])
    valid = case.fate("valid", own_encoding=own_encoding)
    assert sorted(m["batch"]["row"] for m in sink.sent) == sorted(valid)  # each once
    for message in sink.sent:
        spec = valid[message["batch"]["row"]]
        assert message["id"] == f"fuzz:{message['batch']['row']}"
        assert message["customer_id"] == OWNERS[spec.email]
        assert message["data"]["delta"] == spec.delta
        notes = (message["data"].get("internal_note", ""), message["data"].get("customer_note", ""))
        assert notes == tuple(n.strip() for n in spec.notes)
    assert report.valid == report.published == len(valid)
    assert report.blank_rows == len(case.fate("blank"))
    assert report.rows == len(case.rows) - report.blank_rows


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(csv_case(PEOPLE))
def test_every_row_of_a_hostile_file_is_published_once_or_reported(case: CsvCase) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "points.csv"
        path.write_bytes(case.raw)
        sink = Sink()
        report = import_file(path, sink)
        check_case(case, path, sink, report)
        if case.single_byte:
            sink = Sink()
            report = import_file(path, sink, text_encoding(case.encoding))
            check_case(case, path, sink, report, own_encoding=True)
            assert report.encoding == case.encoding


@pytest.mark.parametrize(("label", "raw", "words"), UNREADABLE, ids=[u[0] for u in UNREADABLE])
def test_a_file_that_cannot_be_read_fails_with_one_error_saying_why(
    tmp_path: Path, label: str, raw: bytes, words: str
) -> None:
    path = tmp_path / "points.csv"
    path.write_bytes(raw)
    sink = Sink()
    with pytest.raises(HeaderError, match=words):
        import_file(path, sink)
    assert sink.sent == [], label
