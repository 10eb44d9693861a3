"""`--encoding`: cp1252 and latin-1 files, bytes an encoding leaves undefined, UTF-8 read as
cp1252, the rejected-rows file in the input's encoding and its round trip, the batch id."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from admin.csvtext import ACCEPTED, CP1252, LATIN_1, UTF_8, HeaderError, text_encoding
from admin.imports import ImportOptions, ImportReport, default_batch_id, run_import
from admin.rejected import rejected_path
from cli.main import app
from tests.unit.test_import_pipeline import OWNERS, Directory, Sink

TIERS = ("Bronze", "Silver", "Gold", "Złoty")  # "ł" is neither cp1252 nor latin-1
POINTS = (
    "email;points;internal_note;customer_note\r\n"
    "ana@example.com;5;plain;\r\n"  # 2: ASCII
    "ben@example.com;10;Zoë paid €5;Merci, à bientôt\r\n"  # 3: accents and the euro sign
    "cat@example.com;-2;“quoted” \u2013 dash;\r\n"  # 4: cp1252's curly quotes and dash
)

BOTH_ACCENTED_ROWS = {2: ("Zoë paid €5", "Merci, à bientôt"), 3: ("“quoted” \u2013 dash", None)}
"""Rows 3 and 4 of POINTS as the commands of a rejected-rows file holding only them."""


def write(tmp_path: Path, raw: bytes, name: str = "points.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(raw)
    return path


async def import_points(
    path: Path, encoding: str = "utf-8", *, owners: dict[str, str] = OWNERS
) -> tuple[ImportReport, Sink]:
    sink = Sink()
    options = ImportOptions("points", path, TIERS, encoding=text_encoding(encoding))
    return await run_import(options, Directory(owners), sink), sink


def rejected(path: Path, encoding: str, delimiter: str = ";") -> list[list[str]]:
    text = rejected_path(path).read_bytes().decode(encoding)
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def notes(sink: Sink) -> dict[int, tuple[str, str | None]]:
    """{row: (internal_note, customer_note)} of the commands sent."""
    return {
        env["batch"]["row"]: (env["data"]["internal_note"], env["data"].get("customer_note"))
        for _, _, env in sink.sent
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("utf-8", UTF_8),
        ("UTF-8", UTF_8),
        ("cp1252", CP1252),
        ("Windows-1252", CP1252),
        ("latin-1", LATIN_1),
        ("ISO-8859-1", LATIN_1),
    ],
)
def test_the_accepted_encodings_and_their_aliases(name, expected):
    assert text_encoding(name) is expected


@pytest.mark.parametrize("name", ["utf-16", "utf8", "ascii", "", "cp1250"])
def test_any_other_encoding_is_refused_listing_the_accepted_ones(name):
    with pytest.raises(ValueError, match="unknown encoding") as refused:
        text_encoding(name)
    assert ACCEPTED in str(refused.value)


async def test_a_cp1252_file_imports_fully_with_its_encoding_and_as_utf8_says_what_to_do(tmp_path):
    path = write(tmp_path, POINTS.encode("cp1252"))

    report, sink = await import_points(path)
    assert [env["batch"]["row"] for _, _, env in sink.sent] == [2]
    lines = rejected(path, "cp1252")  # the rejected rows keep the file's own bytes
    assert [line[0] for line in lines[1:]] == ["3", "4"]
    for line in lines[1:]:
        assert "save the file as CSV UTF-8 or import it with --encoding cp1252" in line[1]
    assert lines[1][2:] == ["ben@example.com", "10", "Zoë paid €5", "Merci, à bientôt"]

    report, sink = await import_points(path, "windows-1252")
    assert (report.rows, report.published, report.rejected) == (3, 3, 0)
    assert report.as_dict()["encoding"] == "cp1252"
    assert notes(sink) == {
        2: ("plain", None),
        3: ("Zoë paid €5", "Merci, à bientôt"),
        4: ("“quoted” \u2013 dash", None),
    }
    assert not rejected_path(path).exists()


@pytest.mark.parametrize("byte", [0x81, 0x8D, 0x8F, 0x90, 0x9D])
async def test_a_byte_cp1252_leaves_undefined_rejects_its_row_only(tmp_path, byte):
    raw = POINTS.encode("cp1252").replace(b"plain", b"pl" + bytes([byte]) + b"in")
    path = write(tmp_path, raw)
    report, sink = await import_points(path, "cp1252")
    assert sorted(notes(sink)) == [3, 4]
    assert report.first_rejections == [
        (
            2,
            "row holds a byte cp1252 does not define (0x81, 0x8D, 0x8F, 0x90 or 0x9D): "
            "check the file's encoding",
        )
    ]
    written = rejected_path(path).read_bytes()
    assert b";pl" + bytes([byte]) + b"in;" in written  # the row's exact bytes, nothing changed


async def test_latin1_reads_accents_and_rejects_the_bytes_where_cp1252_has_euro_and_quotes(
    tmp_path,
):
    raw = POINTS.encode("cp1252")
    path = write(tmp_path, raw)
    report, sink = await import_points(path, "latin-1")
    assert sorted(notes(sink)) == [2]
    assert [reason for _, reason in report.first_rejections] == [
        "row holds bytes 0x80-0x9F, control codes in latin-1: import it with --encoding cp1252"
    ] * 2
    for windows, plain in ((b"\x80", b"EUR"), (b"\x93", b'"'), (b"\x94", b'"'), (b"\x96", b"-")):
        raw = raw.replace(windows, plain)
    path.write_bytes(raw)
    report, sink = await import_points(path, "iso-8859-1")
    assert notes(sink)[3] == ("Zoë paid EUR5", "Merci, à bientôt")
    assert report.rejected == 0


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
async def test_a_utf8_bom_with_a_single_byte_encoding_stops_the_import(tmp_path, encoding):
    path = write(tmp_path, b"\xef\xbb\xbf" + POINTS.encode())
    with pytest.raises(HeaderError, match="looks like CSV UTF-8; import it without --encoding"):
        await import_points(path, encoding)
    assert not rejected_path(path).exists()


async def test_utf8_read_as_cp1252_is_rejected_not_published_as_mojibake(tmp_path):
    path = write(tmp_path, POINTS.encode())
    report, sink = await import_points(path, "cp1252")
    assert sorted(notes(sink)) == [2]  # "Zoë" would have been "ZoÃ«"
    assert {reason for _, reason in report.first_rejections} == {
        "row looks like UTF-8 text, not cp1252: import the file without --encoding"
    }
    # The rejected rows hold the UTF-8 bytes as they were: that file imports as UTF-8.
    again, sink = await import_points(rejected_path(path))
    assert notes(sink) == BOTH_ACCENTED_ROWS
    assert again.rejected == 0


async def test_the_batch_id_is_the_files_not_the_encodings(tmp_path):
    path = write(tmp_path, POINTS.encode("cp1252"))
    first, sent_first = await import_points(path)
    again, sent_again = await import_points(path, "cp1252")
    assert first.batch_id == again.batch_id == default_batch_id("points", path)
    # Row 2 (ASCII) gets the same command id twice, so the workers apply it once.
    ids = [env["id"] for _, _, env in sent_first.sent + sent_again.sent]
    assert ids == [f"{first.batch_id}:{row}" for row in (2, 2, 3, 4)]


TIER_ROWS = (
    "email,tier,internal_note\r\n"
    "ana@example.com,Gold,Café\r\n"  # 2: valid
    "dan@example.com,Silver,Noël\r\n"  # 3: unknown customer (added before the re-import)
    "ben@example.com,Platnum,déjà\r\n"  # 4: unknown tier (fixed by hand)
)


async def test_rejected_rows_fixed_and_imported_again_in_the_same_encoding(tmp_path):
    path = write(tmp_path, TIER_ROWS.encode("cp1252"), "tiers.csv")
    options = ImportOptions("tiers", path, TIERS, encoding=CP1252)
    report = await run_import(options, Directory(OWNERS), Sink())
    assert report.rejected == 2
    lines = rejected(path, "cp1252", ",")  # a program's tier name cp1252 lacks did not stop it
    assert lines[0] == ["row", "reason", "email", "tier", "internal_note"]
    assert lines[2][1].endswith("known tiers: Bronze, Silver, Gold, Z\\u0142oty")
    assert lines[2][2:] == ["ben@example.com", "Platnum", "déjà"]

    fixed = rejected_path(path)  # fixed in place, as an admin would
    fixed.write_bytes(fixed.read_bytes().replace(b",Platnum,", b",Gold,"))
    owners = {**OWNERS, "dan@example.com": "c-dan"}
    options = ImportOptions("tiers", fixed, TIERS, encoding=CP1252)
    sink = Sink()
    again = await run_import(options, Directory(owners), sink)
    assert (again.rows, again.published, again.rejected) == (2, 2, 0)
    by_customer = {key: env for _, key, env in sink.sent}
    assert by_customer[b"c-dan"]["data"]["tier"] == "Silver"
    assert by_customer[b"c-ben"]["data"]["tier"] == "Gold"
    assert by_customer[b"c-ben"]["data"]["internal_note"] == "déjà"
    assert again.batch_id != report.batch_id  # its own rows, numbered anew: ids never clash


async def test_rows_rejected_as_not_utf8_import_from_the_rejected_file_with_the_encoding(
    tmp_path,
):
    path = write(tmp_path, POINTS.encode("cp1252"))
    await import_points(path)  # rows 3 and 4 rejected as not UTF-8, kept as cp1252 bytes
    report, sink = await import_points(rejected_path(path), "cp1252")
    assert notes(sink) == BOTH_ACCENTED_ROWS
    assert report.rejected == 0


async def test_the_rejected_file_of_a_rejected_file_has_one_row_and_reason_column(tmp_path):
    path = write(tmp_path, TIER_ROWS.encode("cp1252"), "tiers.csv")
    options = ImportOptions("tiers", path, TIERS, encoding=CP1252)
    await run_import(options, Directory(OWNERS), Sink())
    first = rejected_path(path)
    options = ImportOptions("tiers", first, TIERS, encoding=CP1252)
    await run_import(options, Directory(OWNERS), Sink())
    lines = rejected(first, "cp1252", ",")
    assert lines[0] == ["row", "reason", "email", "tier", "internal_note"]
    assert [line[0] for line in lines[1:]] == ["2", "3"]  # numbered as that file shows them
    assert lines[2][2:] == ["ben@example.com", "Platnum", "déjà"]


def test_the_cli_refuses_another_encoding_before_reading_the_file(tmp_path):
    absent = tmp_path / "absent.csv"
    result = CliRunner().invoke(
        app, ["import", "points", str(absent), "--encoding", "utf-16"], terminal_width=200
    )
    assert result.exit_code == 2
    assert "unknown encoding 'utf-16'; accepted: utf-8 (the default), cp1252" in result.stderr
    assert "absent.csv" not in result.stderr  # refused before the file was looked at
    page = CliRunner().invoke(app, ["import", "tiers", "--help"], terminal_width=200).output
    assert "--encoding" in page
    assert "latin-1 (or iso-8859-1)" in page
