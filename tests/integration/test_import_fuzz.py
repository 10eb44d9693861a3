"""Generated hostile CSV files through the real `loyalty import`, Kafka and the store.

Each row of each file knows its fate (tests/hostile_csv.py). The CLI must exit 0 for every
readable file, write every bad row with its number and a reason to ``<file>.rejected.csv``,
publish every good row exactly once (id ``<batch>:<row>``, to the row's customer, its values
verbatim) and count them in ``loyalty import status``; a file it cannot read at all exits 1
with one error saying why, and publishes nothing. A latin-1 or cp1252 file is imported twice,
as UTF-8 and with ``--encoding`` of its encoding (its rows that are not ASCII import too).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.hostile_csv import UNREADABLE, CsvCase, People, RowSpec, csv_case, rejected_rows
from tests.hostile_messages import generate
from tests.integration.admin_helpers import Isolated, read_topic, seed_customers
from topics.names import Topics

pytestmark = pytest.mark.integration

FILES = 8
ROWS = 30
CLI_UNREADABLE = {"utf-16 with BOM", "no header", "cp1252 header", "quote never closed, 17 MB"}


def check_import(
    case: CsvCase,
    path: Path,
    done: subprocess.CompletedProcess[str],
    *,
    own_encoding: bool,
) -> None:
    """The CLI's report and rejected-rows file hold every row where its fate says."""
    assert "Traceback" not in done.stderr, done.stderr
    report = json.loads(done.stdout)
    rejected = rejected_rows(path, case.delimiter)
    expected = case.fate("rejected", own_encoding=own_encoding)
    assert sorted(rejected) == sorted(expected), (case.encoding, case.delimiter, done.stderr)
    for row, spec in expected.items():
        assert spec.reason.casefold() in rejected[row].casefold(), (row, rejected[row])
    valid = len(case.fate("valid", own_encoding=own_encoding))
    counts = (report["valid"], report["published"], report["rejected"])
    assert counts == (valid, valid, len(expected))


async def test_generated_hostile_files_are_imported_row_by_row(
    program: Isolated, unique: str, tmp_path: Path
) -> None:
    started = time.perf_counter()
    people = People(
        tuple(f"fz{n:02d}-{unique}@example.com" for n in range(ROWS)),
        tuple(f"nobody{n:02d}-{unique}@example.com" for n in range(ROWS)),
    )
    owners = await seed_customers(program.settings, people.known, unique)
    cases: list[CsvCase] = generate(FILES, lambda n: csv_case(people, ROWS), per_example=1)
    tally: Counter[str] = Counter()
    valid: dict[str, RowSpec] = {}
    for n, case in enumerate(cases):
        path = tmp_path / f"points-{n}.csv"
        path.write_bytes(case.raw)
        imports = [(f"fz-{unique}-{n}", False)]
        if case.single_byte:
            imports.append((f"fz-{unique}-{n}-{case.encoding}", True))
        for batch, own_encoding in imports:
            encoding = case.encoding if own_encoding else "utf-8"
            done = program.cli(
                "import", "points", str(path), "--batch-id", batch, "--encoding", encoding, "--json"
            )
            check_import(case, path, done, own_encoding=own_encoding)
            fate = case.fate("valid", own_encoding=own_encoding)
            valid.update({f"{batch}:{row}": spec for row, spec in fate.items()})
        tally.update(spec.fate for spec in case.rows.values())
        tally[f"{case.encoding} {case.delimiter!r}"] += 1

    topic = Topics(program.settings.topic_namespace).adjustments
    messages = await read_topic(program.settings, topic, len(valid))
    assert sorted(m["id"] for m in messages) == sorted(valid)  # each good row exactly once
    for message in messages:
        spec = valid[message["id"]]
        assert message["customer_id"] == owners[spec.email]
        assert message["data"]["delta"] == spec.delta
        notes = (message["data"].get("internal_note", ""), message["data"].get("customer_note", ""))
        assert notes == tuple(note.strip() for note in spec.notes)

    for n, (label, raw, words) in enumerate(UNREADABLE):
        if label not in CLI_UNREADABLE:
            continue  # every one goes through the import itself in tests/unit/test_import_fuzz.py
        path = tmp_path / f"unreadable-{n}.csv"
        path.write_bytes(raw)
        batch = f"bad-{unique}-{n}"
        done = program.cli("import", "points", str(path), "--batch-id", batch, check=1)
        assert words in done.stderr, (label, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
    assert len(await read_topic(program.settings, topic, len(valid), within=30)) == len(valid)
    print(
        f"\nimport fuzz: {FILES} files, rows {dict(tally)}, "
        f"{len(CLI_UNREADABLE)} unreadable files; {time.perf_counter() - started:.1f} s"
    )
