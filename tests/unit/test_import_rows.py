"""CSV import rules: header checks, dialects, row validation and duplicate emails (pure)."""

from __future__ import annotations

import io

import pytest

from admin.csvrows import (
    SPECS,
    RejectedRow,
    RowChecker,
    ValidRow,
    parse_rows,
    read_header,
    template,
)
from admin.csvtext import HeaderError
from admin.seen import SeenEmails

TIERS = ("Bronze", "Silver", "Gold")


def parse(text: str, kind: str = "tiers") -> list[ValidRow | RejectedRow]:
    stream = io.StringIO(text, newline="")
    spec = SPECS[kind]  # type: ignore[index]
    header = read_header(stream, spec)
    checker = RowChecker(spec, header, TIERS)
    return list(parse_rows(stream, checker, header.delimiter))


def reasons(rows: list[ValidRow | RejectedRow]) -> dict[int, str]:
    return {r.row: r.reason for r in rows if isinstance(r, RejectedRow)}


def test_valid_tier_rows_get_the_canonical_tier_name_and_no_rewards_or_email():
    rows = parse("email,tier\nAna@Example.com,gold\nben@example.com, Silver \n")
    assert rows == [
        ValidRow(
            2,
            "ana@example.com",
            {"tier": "Gold", "notify": False, "entry_rewards": False},
            ["Ana@Example.com", "gold"],
        ),
        ValidRow(
            3,
            "ben@example.com",
            {"tier": "Silver", "notify": False, "entry_rewards": False},
            ["ben@example.com", " Silver "],
        ),
    ]


def test_semicolons_quotes_and_header_case_are_accepted():
    rows = parse('Email;TIER;internal_note\n"ana@example.com";"Gold";"moved; by hand"\n')
    assert isinstance(rows[0], ValidRow)
    assert rows[0].data["internal_note"] == "moved; by hand"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("email\n", "missing column tier"),
        ("mail,tier\n", "missing column email; unknown column 'mail'"),
        ("email,tier,colour\n", "unknown column 'colour'"),
        ("email,tier,tier\n", "repeated column tier"),
        ("\n", "header row"),
    ],
)
def test_a_wrong_header_names_the_missing_and_unknown_columns(header, expected):
    with pytest.raises(HeaderError, match=expected):
        parse(header + "ana@example.com,Gold\n")


def test_each_bad_row_is_reported_with_its_spreadsheet_row_and_reason():
    text = (
        "email,tier\n"
        "not-an-email,Gold\n"  # row 2
        "ana@example.com,Platnum\n"  # row 3
        "\n"  # row 4: blank, skipped
        ",Gold\n"  # row 5
        "ben@example.com\n"  # row 6
        'carol@example.com,"Gold\nwith a newline"\n'  # row 7: one record over two lines
        "dan@example.com,Gold\n"  # row 8
        "ANA@example.com,Gold\n"  # row 9: duplicate of row 3 (even though row 3 was bad)
    )
    rows = parse(text)
    found = reasons(rows)
    assert "not an email address" in found[2]
    assert found[3] == "unknown tier 'Platnum'; known tiers: Bronze, Silver, Gold"
    assert found[5] == "email is empty"
    assert found[6] == "row has 1 cells, the header has 2"
    assert "unknown tier" in found[7]
    assert found[9] == "duplicate email: only row 3 applies"
    assert [r.row for r in rows if isinstance(r, ValidRow)] == [8]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("0", "points is 0; give a positive number"),
        ("1.5", "points is '1.5'; give a whole number"),
        ("1e3", "give a whole number"),
        ("", "points is empty"),
        ("10000000000", "at most 1000000000 either way"),
        ("9" * 400, "is too large"),
    ],
)
def test_points_must_be_a_non_zero_whole_number(cell, expected):
    rows = parse(f"email,points\nana@example.com,{cell}\n", "points")
    assert expected in reasons(rows)[2]


def test_points_rows_carry_notes_and_expiry_months():
    rows = parse(
        "email,points,internal_note,customer_note,expires_in_months\n"
        "ana@example.com,+500,migrated,Welcome,12\n"
        "ben@example.com,-20,fix,,\n"
        "cat@example.com,-20,,,3\n"
        "dan@example.com,20,,,0\n",
        "points",
    )
    assert rows[0].data == {  # type: ignore[union-attr]
        "delta": 500,
        "internal_note": "migrated",
        "customer_note": "Welcome",
        "expires_in_months": 12,
    }
    assert rows[1].data == {"delta": -20, "internal_note": "fix"}  # type: ignore[union-attr]
    assert "added points only" in reasons(rows)[4]
    assert "give 1 or more" in reasons(rows)[5]


def test_stamps_are_bounded_like_the_command():
    rows = parse("email,stamps\nana@example.com,3\nben@example.com,20000\n", "stamps")
    assert rows[0].data == {"delta": 3}  # type: ignore[union-attr]
    assert "at most 10000" in reasons(rows)[3]


def test_text_that_is_not_utf8_or_holds_nul_is_rejected_per_row():
    raw = b"email,tier\nana@example.com,Gold\n" + b"b\xe9n@example.com,Gold\nc\x00@x.y,Gold\n"
    stream = io.TextIOWrapper(
        io.BytesIO(raw), encoding="utf-8", errors="surrogateescape", newline=""
    )
    spec = SPECS["tiers"]
    header = read_header(stream, spec)
    rows = list(parse_rows(stream, RowChecker(spec, header, TIERS), header.delimiter))
    assert isinstance(rows[0], ValidRow)
    assert "not UTF-8" in reasons(rows)[3]
    assert "NUL" in reasons(rows)[4]


def test_a_huge_cell_rejects_its_row_and_the_import_goes_on():
    rows = parse("email,tier\n" + '"' + "x" * 200_000 + '",Gold\nana@example.com,Gold\n')
    assert "is not an email address" in reasons(rows)[2]
    assert [r.row for r in rows if isinstance(r, ValidRow)] == [3]


def test_trailing_empty_cells_are_tolerated():
    rows = parse("email;tier\nana@example.com;Gold;;\n")
    assert isinstance(rows[0], ValidRow)


@pytest.mark.parametrize("kind", ["tiers", "points", "stamps"])
def test_templates_parse_cleanly(kind):
    rows = parse(template(kind), kind)  # type: ignore[arg-type]
    assert rows
    assert all(isinstance(r, ValidRow) for r in rows)


def test_seen_emails_remembers_the_first_row_through_growth():
    seen = SeenEmails(capacity=4)
    for i in range(5000):
        assert seen.add(f"user{i}@example.com", i + 2) is None
    assert len(seen) == 5000
    assert seen.add("user1234@example.com", 9999) == 1236
    assert seen.add("someone@else.com", 10000) is None


def test_a_megabyte_cell_over_many_lines_is_one_rejected_row_and_later_rows_keep_numbers():
    note = '"' + "x\n" * 500_000 + '"'
    rows = parse(f"email,tier,internal_note\nana@example.com,Gold,{note}\nben@example.com,Gold,\n")
    assert "at most 2000" in reasons(rows)[2]
    assert [(r.row, r.email_key) for r in rows if isinstance(r, ValidRow)] == [
        (3, "ben@example.com")
    ]


def test_a_cell_past_the_field_limit_stops_the_import_with_what_to_do():
    with pytest.raises(HeaderError, match="quote that is never closed"):
        parse('email,tier\nana@example.com,"Gold\n' + "x,Gold\n" * 3_000_000)


def test_tab_separated_files_are_read():
    rows = parse("email\ttier\tinternal_note\nana@example.com\tGold\ta, b; c\n")
    assert isinstance(rows[0], ValidRow)
    assert rows[0].data["internal_note"] == "a, b; c"


def test_a_rejected_row_running_over_lines_hints_at_an_unclosed_quote():
    rows = parse('email,tier\nana@example.com,"Gold\nben@example.com,Gold\n')
    assert "a quote is not closed" in reasons(rows)[2]


def test_a_row_column_numbers_the_rows_as_the_original_file_did():
    rows = parse(
        "row,reason,email,tier\n"
        "4,unknown tier 'Platnum',ana@example.com,Gold\n"  # row 2 of this file
        " 9 ,unknown customer,ben@example.com,Platnum\n"  # row 3: spaces around the number
        "\n"  # row 4: blank, skipped
        "0012,,cat@example.com,Silver\n"  # row 5: leading zeros
    )
    assert [(r.row, r.email_key) for r in rows if isinstance(r, ValidRow)] == [
        (4, "ana@example.com"),
        (12, "cat@example.com"),
    ]
    assert reasons(rows) == {9: "unknown tier 'Platnum'; known tiers: Bronze, Silver, Gold"}


NOT_ROW_NUMBERS = ["x", "", "1", "0", "-4", "+4", "4.0", "²", "4294967296", "9" * 30]


@pytest.mark.parametrize("cell", NOT_ROW_NUMBERS)
def test_a_row_cell_that_is_not_a_row_of_the_original_file_rejects_the_row(cell):
    rows = parse(f"row,email,tier\n{cell},ana@example.com,Gold\n5,ben@example.com,Gold\n")
    [rejected, valid] = rows
    assert isinstance(rejected, RejectedRow)
    assert (rejected.row, rejected.in_file, rejected.label) == (2, True, "2 of this file")
    shown = repr(cell[:20]) if cell else "empty"
    assert rejected.reason == (
        f"row number {shown} is not a row of the original file: keep the row column as the "
        "rejected-rows file wrote it"
    )
    assert isinstance(valid, ValidRow)
    assert valid.row == 5


def test_the_largest_row_number_is_accepted():
    rows = parse("row,email,tier\n4294967295,ana@example.com,Gold\n")
    assert [r.row for r in rows if isinstance(r, ValidRow)] == [4294967295]


def test_a_repeated_row_number_applies_its_first_row_only():
    rows = parse(
        "row,email,tier\n"
        "7,ana@example.com,Gold\n"  # row 2 of this file
        "8,ben@example.com,Gold\n"  # row 3
        "7,cat@example.com,Gold\n"  # row 4: repeats 7
    )
    assert [r.row for r in rows if isinstance(r, ValidRow)] == [7, 8]
    [repeated] = [r for r in rows if isinstance(r, RejectedRow)]
    assert (repeated.row, repeated.in_file, repeated.cells[1]) == (7, False, "cat@example.com")
    assert repeated.reason == (
        "row number 7 is repeated (rows 2 and 4 of this file): only the first applies"
    )


def test_duplicate_emails_of_a_rejected_rows_file_name_the_original_rows():
    rows = parse("row,email,tier\n6,ana@example.com,Gold\n3,ANA@example.com,Silver\n")
    assert reasons(rows) == {3: "duplicate email: only row 6 applies"}


def test_a_row_rejected_for_its_shape_keeps_its_original_number():
    rows = parse("row,email,tier\n5,ana@example.com\n")
    assert reasons(rows) == {5: "row has 2 cells, the header has 3"}


def test_a_file_without_a_row_column_is_numbered_by_position():
    rows = parse("email,tier\nana@example.com,Gold\n")
    assert [r.row for r in rows if isinstance(r, ValidRow)] == [2]


def test_a_repeated_row_column_is_refused():
    with pytest.raises(HeaderError, match="repeated column row"):
        parse("row,email,tier,row\n2,ana@example.com,Gold,3\n")
