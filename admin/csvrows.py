"""Pure CSV import rules: the file kinds, header checks and the cheap per-row validation.

No I/O beyond reading the text stream it is handed, no clock. Rows are checked with plain
string operations (a pydantic model per row costs ten times more at a million rows); the
import builds the envelopes once a row has passed and its customer is known.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from admin.csvtext import UTF_8, HeaderError, TextEncoding
from admin.seen import SeenEmails
from models.messages import DELTA_LIMIT, STAMPS_DELTA_LIMIT
from models.tier_messages import MONTHS_LIMIT

ImportKind = Literal["tiers", "points", "stamps"]
IMPORT_KINDS: tuple[ImportKind, ...] = ("tiers", "points", "stamps")

NOTE_LIMIT = 2000
EMAIL_LIMIT = 320
# The envelope's shape check for emails (models.values.EmailAddress), applied without pydantic.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_INTEGER = re.compile(r"[+-]?[0-9]+")
FIELD_LIMIT = 16 * 1024 * 1024
"""Largest cell the reader takes (the csv module's default, 128 KiB, is below a 1 MB cell:
past it the reader resumes inside the cell and turns its lines into rows of their own)."""
DELIMITERS = (",", ";", "\t")
REJECTED_COLUMNS = ("row", "reason")
"""The rejected-rows file's own first columns: a header may hold them (they are not read), so
that file, once fixed, imports as it is."""


@dataclass(frozen=True)
class KindSpec:
    """The columns of one import kind and the command each row becomes."""

    kind: ImportKind
    required: tuple[str, ...]
    optional: tuple[str, ...]
    message_type: str
    sample: tuple[tuple[str, ...], ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """Return every column this kind accepts, required ones first."""
        return self.required + self.optional


SPECS: dict[ImportKind, KindSpec] = {
    "tiers": KindSpec(
        "tiers",
        ("email", "tier"),
        ("internal_note",),
        "tier.change",
        (
            ("ana@example.com", "Gold", "Loyal since the shop opened"),
            ("ben@example.com", "silver", ""),
        ),
    ),
    "points": KindSpec(
        "points",
        ("email", "points"),
        ("internal_note", "customer_note", "expires_in_months"),
        "points.adjust",
        (
            ("ana@example.com", "500", "Migrated from the old program", "Welcome bonus", "12"),
            ("ben@example.com", "-120", "Duplicate order 4711", "", ""),
        ),
    ),
    "stamps": KindSpec(
        "stamps",
        ("email", "stamps"),
        ("internal_note", "customer_note"),
        "stamps.adjust",
        (
            ("ana@example.com", "3", "Paper card brought in", "Stamps from your paper card"),
            ("ben@example.com", "-1", "Stamp given twice", ""),
        ),
    ),
}


@dataclass(frozen=True)
class Header:
    """The checked header: the delimiter found and the index of each known column."""

    delimiter: str
    names: tuple[str, ...]
    index: Mapping[str, int]


def detect_delimiter(first_line: str) -> str:
    """Return the separator the header line holds most of: comma, semicolon or tab (ties: comma)."""
    return max(DELIMITERS, key=first_line.count)


def check_header(cells: list[str], spec: KindSpec) -> dict[str, int]:
    """Return {column: index} or raise HeaderError naming missing, unknown or repeated columns."""
    names = [cell.strip().casefold() for cell in cells]
    problems = []
    missing = [name for name in spec.required if name not in names]
    if missing:
        problems.append("missing column" + ("s " if len(missing) > 1 else " ") + ", ".join(missing))
    known = spec.columns + REJECTED_COLUMNS
    unknown = [cells[i].strip() for i, name in enumerate(names) if name not in known]
    if unknown:
        shown = ", ".join(repr(name) for name in unknown)
        problems.append("unknown column" + ("s " if len(unknown) > 1 else " ") + shown)
    repeated = sorted({name for name in names if names.count(name) > 1 and name in spec.columns})
    if repeated:
        problems.append(
            "repeated column" + ("s " if len(repeated) > 1 else " ") + ", ".join(repeated)
        )
    if problems:
        raise HeaderError(
            f"header of a {spec.kind} import: {'; '.join(problems)}. Expected "
            f"{', '.join(spec.required)}"
            + (f" and optionally {', '.join(spec.optional)}" if spec.optional else "")
            + f" (`loyalty import template {spec.kind}` prints a sample file)"
        )
    return {name: i for i, name in enumerate(names)}


def read_header(stream: IO[str], spec: KindSpec, encoding: TextEncoding = UTF_8) -> Header:
    """Read and check the header line of a text stream positioned at its start."""
    first_line = stream.readline()
    if not first_line.strip():
        raise HeaderError(
            f"the file is empty or its first line is blank; it needs a header row "
            f"({', '.join(spec.required)})"
        )
    problem = encoding.header_problem(first_line)
    if problem is not None:
        raise HeaderError(problem)
    delimiter = detect_delimiter(first_line)
    cells = next(csv.reader([first_line], delimiter=delimiter), [])
    index = check_header(cells, spec)
    return Header(delimiter, tuple(cells), index)


@dataclass(slots=True)  # not frozen: a frozen __init__ costs a microsecond a row
class ValidRow:
    """A row that passed every check; ``data`` is the command's payload."""

    row: int
    email_key: str
    data: dict[str, Any]
    cells: list[str]


@dataclass(slots=True)
class RejectedRow:
    """A row that will not be imported, and why."""

    row: int
    reason: str
    cells: list[str]


ParsedRow = ValidRow | RejectedRow


@dataclass
class ParseStats:
    """Counts kept while parsing: data rows read, and tier spellings matched to their name."""

    rows: int = 0
    blank: int = 0
    tier_spellings: dict[tuple[str, str], int] = field(default_factory=dict)


def _integer(text: str, column: str, limit: int) -> int | str:
    """Return the whole number in ``text`` or the reason it is not one."""
    value = text.strip()
    if not _INTEGER.fullmatch(value):
        shown = repr(value) if value else "empty"
        return f"{column} is {shown}; give a whole number like 25 or -10"
    if len(value) > 12:  # far beyond any limit; spares int() huge inputs
        return f"{column} {value[:20]}... is too large; at most {limit} at once"
    number = int(value)
    if abs(number) > limit:
        return f"{column} {number} is too large; at most {limit} either way"
    return number


class RowChecker:
    """Validate rows of one import kind against the program's tier names."""

    _MAX_SPELLINGS = 1000

    def __init__(
        self,
        spec: KindSpec,
        header: Header,
        tier_names: Iterable[str],
        encoding: TextEncoding = UTF_8,
    ) -> None:
        self.spec = spec
        self.encoding = encoding
        self.width = len(header.names)
        self.index = header.index
        self.tiers = {name.casefold(): name for name in tier_names}
        # One shared payload per tier: envelopes only read it.
        self._tier_data = {
            key: {"tier": name, "notify": False, "entry_rewards": False}
            for key, name in self.tiers.items()
        }
        self._email_at = header.index["email"]
        self._tier_at = header.index.get("tier", -1)
        self.known_tiers = ", ".join(self.tiers.values()) or "(none: the program defines no tiers)"
        self.seen = SeenEmails()
        self.stats = ParseStats()
        self._optional = [
            (name, header.index[name]) for name in spec.optional if name in header.index
        ]
        # Most tier rows name a tier exactly and nothing else: checked inline, no payload call.
        self._fast_tiers = self._tier_at >= 0 and not self._optional

    def check(self, row: int, cells: list[str]) -> ParsedRow | None:  # noqa: PLR0911 - hot path
        """Return the row as a ValidRow, a RejectedRow saying what to fix, or None if blank."""
        # The hot path of a million-row import: plain string operations, one call per check.
        joined = "".join(cells)
        if not joined or joined.isspace():
            return None
        if len(cells) != self.width or "\x00" in joined or not joined.isascii():
            problem = self._shape_problem(cells, joined)
            if isinstance(problem, str):
                return RejectedRow(row, problem, cells)
            if problem is not None:
                cells = problem
        email = cells[self._email_at].strip()
        if not email or len(email) > EMAIL_LIMIT or _EMAIL.fullmatch(email) is None:
            return RejectedRow(row, _email_problem(email), cells)
        email_key = email.casefold()
        first = self.seen.add(email_key, row)
        if first is not None:
            return RejectedRow(row, f"duplicate email: only row {first} applies", cells)
        if self._fast_tiers:
            written = cells[self._tier_at]
            data = self._tier_data.get(written.casefold())
            if data is not None and written == data["tier"]:
                return ValidRow(row, email_key, data, cells)
        payload = self._payload(cells)
        if isinstance(payload, str):
            return RejectedRow(row, payload, cells)
        return ValidRow(row, email_key, payload, cells)

    def _shape_problem(self, cells: list[str], joined: str) -> str | list[str] | None:
        """Return a reason, the cells without trailing empty ones, or None when fine."""
        if "\x00" in joined or not joined.isascii():
            problem = self.encoding.row_problem(joined)
            if problem is not None:
                return problem
        if len(cells) == self.width:
            return None
        if len(cells) > self.width and not "".join(cells[self.width :]).strip():
            return cells[: self.width]  # trailing empty cells, as spreadsheets sometimes save
        return f"row has {len(cells)} cells, the header has {self.width}"

    def _payload(self, cells: list[str]) -> dict[str, Any] | str:
        kind = self.spec.kind
        data = self._tier(cells) if kind == "tiers" else self._delta(cells, kind)
        if isinstance(data, str):
            return data
        for name, i in self._optional:
            value = cells[i].strip()
            if not value:
                continue
            if name == "expires_in_months":
                months = _expiry_months(value, data["delta"])
                if isinstance(months, str):
                    return months
                data[name] = months
            elif len(value) > NOTE_LIMIT:
                return f"{name} has {len(value)} characters; at most {NOTE_LIMIT}"
            else:
                data[name] = value
        return data

    def _tier(self, cells: list[str]) -> dict[str, Any] | str:
        written = cells[self.index["tier"]].strip()
        tier = self.tiers.get(written.casefold())
        if tier is None:
            shown = repr(written[:80]) if written else "empty"
            return f"unknown tier {shown}; known tiers: {self.known_tiers}"
        if written != tier:
            self._note_spelling(written, tier)
        return {"tier": tier, "notify": False, "entry_rewards": False}

    def _delta(self, cells: list[str], kind: str) -> dict[str, Any] | str:
        limit = DELTA_LIMIT if kind == "points" else STAMPS_DELTA_LIMIT
        delta = _integer(cells[self.index[kind]], kind, limit)
        if isinstance(delta, str):
            return delta
        if delta == 0:
            return f"{kind} is 0; give a positive number to add {kind} or a negative one to remove"
        return {"delta": delta}

    def _note_spelling(self, written: str, tier: str) -> None:
        key = (written, tier)
        spellings = self.stats.tier_spellings
        if key in spellings or len(spellings) < self._MAX_SPELLINGS:
            spellings[key] = spellings.get(key, 0) + 1


def _email_problem(email: str) -> str:
    if not email:
        return "email is empty"
    return f"email {email[:80]!r} is not an email address like ana@example.com"


def _expiry_months(value: str, delta: int) -> int | str:
    months = _integer(value, "expires_in_months", MONTHS_LIMIT)
    if isinstance(months, str):
        return months
    if months < 1:
        return f"expires_in_months is {months}; give 1 or more, or leave it empty"
    if delta < 0:
        return "expires_in_months applies to added points only; leave it empty here"
    return months


_SPANS_LINES = (
    " (a quoted cell of this row runs over several lines: if a quote is not closed, the lines "
    "after it were read into this cell)"
)


def parse_rows(stream: IO[str], checker: RowChecker, delimiter: str) -> Iterator[ParsedRow]:
    """Yield every data row of a stream positioned after its header, numbered as a sheet shows."""
    for chunk in parse_chunks(stream, checker, delimiter, size=1000, limit=1000):
        yield from chunk


def parse_chunks(
    stream: IO[str], checker: RowChecker, delimiter: str, *, size: int, limit: int
) -> Iterator[list[ParsedRow]]:
    """Yield the data rows in lists of ``size`` valid rows (or ``limit`` rows in all).

    Rows are numbered as a spreadsheet shows them (the header is row 1, a blank line is a row).
    One loop for reading, checking and chunking: a generator per row cost a fifth of the time.
    """
    if csv.field_size_limit() < FIELD_LIMIT:
        csv.field_size_limit(FIELD_LIMIT)
    reader = csv.reader(stream, delimiter=delimiter)
    row = 1  # the header
    check = checker.check
    blank = 0
    chunk: list[ParsedRow] = []
    valid = 0
    while True:
        row += 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if "field limit" in str(exc):
                # The reader cannot tell where the cell ends: the rest of the file is not rows.
                raise HeaderError(
                    f"row {row}: a cell is longer than {FIELD_LIMIT // 2**20} MiB, more than any "
                    "column takes; most likely a quote that is never closed. Fix the file and "
                    "import it again with the same batch id (rows before it are not applied twice)"
                ) from None
            chunk.append(RejectedRow(row, f"malformed CSV: {exc}", []))
        else:
            parsed = check(row, cells)
            if parsed is None:
                blank += 1  # a blank line is a blank row in a spreadsheet: counted, not imported
                continue
            if type(parsed) is ValidRow:
                valid += 1
            elif isinstance(parsed, RejectedRow) and any("\n" in c or "\r" in c for c in cells):
                parsed.reason += _SPANS_LINES
            chunk.append(parsed)
        if valid >= size or len(chunk) >= limit:
            checker.stats.rows = row - 1 - blank
            yield chunk
            chunk, valid = [], 0
    checker.stats.blank = blank
    checker.stats.rows = row - 2 - blank
    if chunk:
        yield chunk


def template(kind: ImportKind) -> str:
    """Return a sample file of this kind with every column and two rows."""
    spec = SPECS[kind]
    lines = [",".join(spec.columns)]
    lines += [",".join(_quote(cell) for cell in sample) for sample in spec.sample]
    return "\n".join(lines) + "\n"


def _quote(cell: str) -> str:
    return f'"{cell}"' if any(ch in cell for ch in ',;"\n') else cell
