"""Hypothesis strategies of hostile CSV import files, each row knowing its fate.

A generated ``CsvCase`` is a points import: a header, then rows built one by one as valid or
broken in one known way (NUL bytes, 1 MB cells, formula-looking cells, ragged rows, an email
repeated, an email no customer holds, text the file's encoding cannot carry as UTF-8, quotes,
separators and line breaks inside quoted cells, blank lines), written with one of the
separators the import reads and in UTF-8 with or without a BOM or in latin-1/cp1252 (whose
rows that are not ASCII import only with ``--encoding`` of the file's encoding). Files
the import cannot read at all (UTF-16, no header) are their own cases, with the words the
error must say. Used by tests/unit/test_import_fuzz.py and tests/integration/test_import_fuzz.py.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hypothesis import strategies as st

from admin.csvrows import FIELD_LIMIT
from admin.rejected import rejected_path

RowFate = Literal["valid", "rejected", "blank"]
HEADER = ("email", "points", "internal_note", "customer_note")


@dataclass(frozen=True)
class RowSpec:
    """One line of the file as built: its cells and what the import must do with it."""

    cells: tuple[str, ...]
    fate: RowFate
    reason: str = ""
    """Words the rejection reason must contain (rejected rows)."""
    email: str = ""
    delta: int = 0
    notes: tuple[str, str] = ("", "")
    valid_in_own_encoding: bool = False
    """Rejected only as not UTF-8: valid when read with ``--encoding`` of the file's encoding."""

    def fate_when(self, own_encoding: bool) -> RowFate:
        """The fate when read as UTF-8 (default) or in the file's own encoding."""
        return "valid" if own_encoding and self.valid_in_own_encoding else self.fate


@dataclass(frozen=True)
class CsvCase:
    """A whole file: its bytes and, per spreadsheet row number (header = 1), the row's fate."""

    raw: bytes
    rows: dict[int, RowSpec]
    encoding: str
    delimiter: str
    unreadable: str = ""
    """For a file the import cannot read: words its one error must contain."""
    labels: list[str] = field(default_factory=list)

    def fate(self, fate: RowFate, *, own_encoding: bool = False) -> dict[int, RowSpec]:
        """The rows of one fate, by row number; ``own_encoding``: read with ``--encoding``."""
        return {n: r for n, r in self.rows.items() if r.fate_when(own_encoding) == fate}

    @property
    def single_byte(self) -> bool:
        """Whether the file is latin-1 or cp1252 (it imports fully only with ``--encoding``)."""
        return not self.encoding.startswith("utf-8")


@dataclass(frozen=True)
class People:
    """Emails of customers that exist, and emails nobody holds (one of each per row)."""

    known: tuple[str, ...]
    unknown: tuple[str, ...]


MEGABYTE = 1_000_000
FORMULAS = ("=1+2", "+SUM(A1)", "-2+3", "@SUM(A1)", '=HYPERLINK("http://x")', "=cmd|'/c calc'!A0")
QUOTING = ('say "hi"', "a,b;c\td", "two\nlines", "\r\ncrlf", '"', "")
UNICODE = ("café", "Zoë €5", "日本語", "🎉")


def _notes(encoding: str) -> st.SearchStrategy[str]:
    """Note text every row may carry: formulas and quoting cases are valid note text."""
    plain = st.sampled_from(["", "moved", "ticket 4711", *FORMULAS, *QUOTING])
    if encoding.startswith("utf-8"):
        return plain | st.sampled_from(UNICODE)
    return plain


@st.composite
def row_spec(draw: st.DrawFn, people: People, n: int, encoding: str, seen: list[str]) -> RowSpec:
    """A row: valid, or broken one way; ``seen`` holds the emails valid rows used so far."""
    fresh = people.known[n]  # a row's own email: no other row uses it but as a duplicate
    notes = (draw(_notes(encoding)), draw(_notes(encoding)))
    delta = draw(st.integers(-50, 50).filter(bool))
    sign = draw(st.sampled_from(["", "+"])) if delta > 0 else ""
    good = (fresh, f"{sign}{delta}", *notes)
    how = draw(
        st.sampled_from(
            [
                "valid", "valid", "valid", "valid", "blank", "unknown", "duplicate", "nul",
                "huge note", "huge email", "formula points", "formula email", "zero", "decimal",
                "too large", "short row", "long row", "trailing empties", "empty email",
                "not utf-8",
            ]
        )
    )  # fmt: skip
    if how == "duplicate" and not seen:
        how = "valid"
    if how == "not utf-8" and encoding.startswith("utf-8"):
        how = "valid"
    if how == "valid":
        seen.append(fresh)
        return RowSpec(good, "valid", email=fresh, delta=delta, notes=notes)
    if how == "trailing empties":
        seen.append(fresh)
        return RowSpec((*good, "", ""), "valid", email=fresh, delta=delta, notes=notes)
    if how == "blank":
        return RowSpec((), "blank")
    if how == "not utf-8":
        note = draw(st.sampled_from(["café", "Zoë", "£5"]))
        cells = (fresh, good[1], note, "")
        return RowSpec(
            cells,
            "rejected",
            "not UTF-8",
            email=fresh,
            delta=delta,
            notes=(note, ""),
            valid_in_own_encoding=True,
        )
    cells, reason = _broken(draw, how, good, people, n, seen)
    return RowSpec(cells, "rejected", reason)


def _broken(
    draw: st.DrawFn, how: str, good: tuple[str, ...], people: People, n: int, seen: list[str]
) -> tuple[tuple[str, ...], str]:
    email, points, note, customer_note = good
    if how == "unknown":
        return (people.unknown[n], *good[1:]), "unknown customer"
    if how == "duplicate":
        first = draw(st.sampled_from(seen))
        return (first.upper(), *good[1:]), "duplicate email"
    if how == "nul":
        return (email, points, note + "\x00", customer_note), "NUL"
    if how == "huge note":
        size = draw(st.integers(2001, MEGABYTE))
        return (email, points, "x" * size, customer_note), "at most 2000"
    if how == "huge email":
        return ("a" * MEGABYTE + "@example.com", *good[1:]), "not an email address"
    if how == "formula points":
        bad = draw(st.sampled_from(["=5", "=1+2", "@5", "=SUM(A1)"]))
        return (email, bad, note, customer_note), "give a whole number"
    if how == "formula email":
        bad = draw(st.sampled_from(["=A1", "@example.com", "+cmd", "-x"]))
        return (bad, *good[1:]), "not an email address"
    if how == "zero":
        return (email, draw(st.sampled_from(["0", "+0", "-0"])), note, customer_note), "is 0"
    if how == "decimal":
        return (email, draw(st.sampled_from(["1.5", "1,5", "1e3", "ten"])), note, ""), "whole"
    if how == "too large":
        return (email, "2000000000", note, customer_note), "too large"
    if how == "short row":
        return (email, points), "row has 2 cells, the header has 4"
    if how == "long row":
        return (*good, "surplus"), "row has 5 cells, the header has 4"
    assert how == "empty email", how
    return ("", *good[1:]), "email is empty"


def _write(rows: list[RowSpec], delimiter: str, quote_all: bool) -> str:
    buffer = io.StringIO()
    quoting = csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator="\r\n")
    writer.writerow(HEADER)
    for row in rows:
        if row.fate == "blank":
            buffer.write("\r\n")
        else:
            writer.writerow(row.cells)
    return buffer.getvalue()


@st.composite
def csv_case(draw: st.DrawFn, people: People, size: int = 12) -> CsvCase:
    """A points file of up to ``size`` rows, each row's fate known."""
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "cp1252"]))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    seen: list[str] = []
    count = draw(st.integers(1, size))
    specs = [draw(row_spec(people, n, encoding, seen)) for n in range(count)]
    text = _write(specs, delimiter, draw(st.booleans()))
    raw = text.encode(encoding)
    return CsvCase(raw, {n + 2: spec for n, spec in enumerate(specs)}, encoding, delimiter)


UNREADABLE: tuple[tuple[str, bytes, str], ...] = (
    ("utf-16 with BOM", "email,points\r\nana@example.com,5\r\n".encode("utf-16"), "UTF-16"),
    ("utf-16 without BOM", "email,points\r\nana@example.com,5\r\n".encode("utf-16-le"), "UTF-8"),
    ("no header", b"ana@example.com,5\r\nben@example.com,6\r\n", "missing columns email, points"),
    ("empty", b"", "header row"),
    ("BOM only", b"\xef\xbb\xbf", "header row"),
    (
        "cp1252 header",
        "email,points,note\u20ac\r\nana@example.com,5,\r\n".encode("cp1252"),
        "UTF-8",
    ),
    ("blank first line", b"\r\nemail,points\r\nana@example.com,5\r\n", "header row"),
    (
        "quote never closed, 17 MB",
        b'email,points\r\nana@example.com,"5\r\n' + b"x,1\r\n" * 4_000_000,
        "quote that is never closed",
    ),
)
"""Files no row of which can be imported: (label, bytes, words the one error must say)."""


def rejected_rows(path: Path, delimiter: str) -> dict[int, str]:
    """{row: reason} from the rejected-rows file (none when the file is absent)."""
    target = rejected_path(path)
    if not target.exists():
        return {}
    csv.field_size_limit(FIELD_LIMIT)  # the file repeats cells of a megabyte
    with target.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=delimiter))
    assert rows[0][:2] == ["row", "reason"]
    return {int(row[0]): row[1] for row in rows[1:]}
