"""The import pipeline with an in-memory directory and sink: order, ids, reports, dry runs."""

from __future__ import annotations

import csv
import json
from collections.abc import Collection
from pathlib import Path

import pytest

from admin.csvtext import HeaderError
from admin.imports import (
    UNKNOWN_CUSTOMER,
    Delivered,
    ImportOptions,
    check_batch_id,
    default_batch_id,
    run_import,
)
from topics.codec import parse_message

TIERS = ("Bronze", "Silver", "Gold")


class Directory:
    def __init__(self, owners: dict[str, str]) -> None:
        self.owners = owners
        self.calls: list[list[str]] = []

    async def email_owners(self, emails: Collection[str]) -> dict[str, str]:
        self.calls.append(list(emails))
        return {e: self.owners[e] for e in emails if e in self.owners}


class Sink:
    def __init__(self, fail_rows: frozenset[int] = frozenset()) -> None:
        self.sent: list[tuple[str, bytes, dict]] = []
        self.fail_rows = fail_rows
        self.waiting: list[tuple[Delivered, bool]] = []

    async def send(self, topic: str, key: bytes, value: bytes, delivered: Delivered) -> None:
        envelope = json.loads(value)
        self.sent.append((topic, key, envelope))
        self.waiting.append((delivered, envelope["batch"]["row"] not in self.fail_rows))

    async def flush(self) -> None:
        for delivered, ok in self.waiting:
            delivered(ok)
        self.waiting.clear()


def write(tmp_path: Path, text: str, *, bom: bool = False, name: str = "tiers.csv") -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


OWNERS = {"ana@example.com": "c-ana", "ben@example.com": "c-ben", "cat@example.com": "c-cat"}
TIERS_FILE = (
    "email,tier\n"
    "ana@example.com,gold\n"  # 2 valid
    "nobody@example.com,Gold\n"  # 3 unknown customer
    "ben@example.com,Platnum\n"  # 4 unknown tier
    "ANA@example.com,Silver\n"  # 5 duplicate of 2
    "cat@example.com,Silver\n"  # 6 valid
)


@pytest.mark.parametrize(("bom", "separator"), [(False, ","), (True, ","), (True, ";")])
async def test_tier_import_publishes_valid_rows_and_reports_the_rest(tmp_path, bom, separator):
    path = write(tmp_path, TIERS_FILE.replace(",", separator), bom=bom)
    sink = Sink()
    options = ImportOptions("tiers", path, TIERS, batch_id="b1", actor="ops@example.com")
    report = await run_import(options, Directory(OWNERS), sink)

    assert [(topic, key) for topic, key, _ in sink.sent] == [
        ("loyalty.tier-commands", b"c-ana"),
        ("loyalty.tier-commands", b"c-cat"),
    ]
    first = sink.sent[0][2]
    assert first["id"] == "b1:2"
    assert first["source"] == "import"
    assert first["actor"] == "ops@example.com"
    assert first["batch"] == {"id": "b1", "row": 2, "suppress_notifications": True}
    assert first["data"] == {"tier": "Gold", "notify": False, "entry_rewards": False}
    for _, _, envelope in sink.sent:
        parse_message(envelope)  # every command is a valid contract message
    assert (report.rows, report.valid, report.published, report.rejected) == (5, 2, 2, 3)
    assert report.complete
    assert report.tier_spellings == {("gold", "Gold"): 1}

    assert report.rejected_file == tmp_path / "tiers.csv.rejected.csv"
    raw = report.rejected_file.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") == bom
    lines = list(csv.reader(raw.decode("utf-8-sig").splitlines(), delimiter=separator))
    assert lines[0] == ["row", "reason", "email", "tier"]
    assert [(r[0], r[2]) for r in lines[1:]] == [
        ("3", "nobody@example.com"),
        ("4", "ben@example.com"),
        ("5", "ANA@example.com"),
    ]
    assert lines[1][1] == UNKNOWN_CUSTOMER
    assert lines[2][1].startswith("unknown tier 'Platnum'; known tiers: Bronze, Silver, Gold")
    assert lines[3][1] == "duplicate email: only row 2 applies"


async def test_points_import_builds_adjustments(tmp_path):
    path = write(
        tmp_path,
        "email,points,expires_in_months,customer_note\n"
        "ana@example.com,500,12,Welcome\nben@example.com,-5,,\n",
        name="points.csv",
    )
    sink = Sink()
    await run_import(ImportOptions("points", path, TIERS, batch_id="p1"), Directory(OWNERS), sink)
    assert [env["data"] for _, _, env in sink.sent] == [
        {"delta": 500, "expires_in_months": 12, "customer_note": "Welcome"},
        {"delta": -5},
    ]
    assert {topic for topic, _, _ in sink.sent} == {"loyalty.adjustments"}
    assert all(parse_message(env).type == "points.adjust" for _, _, env in sink.sent)
    assert not (tmp_path / "points.csv.rejected.csv").exists()


async def test_lookups_are_batched_and_rows_stay_in_file_order(tmp_path):
    rows = [f"user{i}@example.com,Gold" for i in range(1000)]
    path = write(tmp_path, "email,tier\n" + "\n".join(rows) + "\n")
    owners = {f"user{i}@example.com": f"c{i}" for i in range(0, 1000, 2)}
    directory, sink = Directory(owners), Sink()
    options = ImportOptions("tiers", path, TIERS, batch_id="big", lookup_batch=64)
    report = await run_import(options, directory, sink)
    assert max(len(call) for call in directory.calls) == 64
    assert sum(len(call) for call in directory.calls) == 1000
    assert [env["batch"]["row"] for _, _, env in sink.sent] == list(range(2, 1002, 2))
    assert (report.published, report.unknown_customers) == (500, 500)


async def test_dry_run_publishes_nothing_but_reports(tmp_path):
    path = write(tmp_path, TIERS_FILE)
    sink = Sink()
    options = ImportOptions("tiers", path, TIERS, dry_run=True)
    report = await run_import(options, Directory(OWNERS), sink)
    assert sink.sent == []
    assert (report.valid, report.rejected, report.published) == (2, 3, 0)
    assert report.complete


async def test_failed_deliveries_leave_the_import_incomplete(tmp_path):
    path = write(tmp_path, TIERS_FILE)
    sink = Sink(fail_rows=frozenset({6}))
    report = await run_import(ImportOptions("tiers", path, TIERS), Directory(OWNERS), sink)
    assert (report.published, report.failed, report.first_failed_row) == (1, 1, 6)
    assert not report.complete


async def test_the_default_batch_id_is_a_digest_of_the_content(tmp_path):
    one = write(tmp_path, TIERS_FILE, name="a.csv")
    two = write(tmp_path, TIERS_FILE, name="b.csv")
    three = write(tmp_path, TIERS_FILE + "dan@example.com,Gold\n", name="c.csv")
    assert default_batch_id("tiers", one) == default_batch_id("tiers", two)
    assert default_batch_id("tiers", one) != default_batch_id("tiers", three)
    sink = Sink()
    report = await run_import(ImportOptions("tiers", one, TIERS), Directory(OWNERS), sink)
    assert sink.sent[0][2]["id"] == f"{report.batch_id}:2"


@pytest.mark.parametrize("bad", ["", "has space", "x" * 181])
def test_batch_ids_are_checked(bad):
    with pytest.raises(ValueError, match="batch id"):
        check_batch_id(bad)


async def test_a_wrong_header_stops_before_anything_is_sent(tmp_path):
    path = write(tmp_path, "mail,tier\nana@example.com,Gold\n")
    sink = Sink()
    with pytest.raises(HeaderError, match="missing column email; unknown column 'mail'"):
        await run_import(ImportOptions("tiers", path, TIERS), Directory(OWNERS), sink)
    assert sink.sent == []


async def test_utf16_and_missing_files_get_a_clear_error(tmp_path):
    path = tmp_path / "u16.csv"
    path.write_bytes("email,tier\n".encode("utf-16"))
    with pytest.raises(HeaderError, match="UTF-16"):
        await run_import(ImportOptions("tiers", path, TIERS), Directory(OWNERS), Sink())
    with pytest.raises(HeaderError, match="cannot read"):
        await run_import(
            ImportOptions("tiers", tmp_path / "nope.csv", TIERS),
            Directory(OWNERS),
            Sink(),
        )
