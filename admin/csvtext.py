"""How an import file's bytes become text: the encodings it may be in, and text that is not.

UTF-8 (a BOM is dropped) is the default; a Western Windows' plain "CSV" is cp1252, older
systems write latin-1. Bytes an encoding cannot read arrive as lone surrogates
(``errors="surrogateescape"``): the row holding them is rejected on its own, and the
rejected-rows file, written in the same encoding, gives back their exact bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO

UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
NUL_BYTES = "row holds NUL bytes, which no text has; delete them"
_C1_CONTROLS = re.compile("[\x80-\x9f]")


class HeaderError(ValueError):
    """The file cannot be imported as it is: unreadable, empty or with a wrong header."""


@dataclass(frozen=True)
class TextEncoding:
    """An encoding import files may be in, and why a row or a header is not text in it."""

    name: str
    """Python's codec name, as ``--encoding`` spells it."""
    label: str
    """How messages spell it."""
    advice: str
    """What to do about a header this encoding cannot read."""
    undecodable: str
    """Reason of a row holding bytes this encoding cannot read (kept short: one per row)."""
    controls: str = ""
    """Reason of a row holding C1 control codes (latin-1 has them where cp1252 has € and “)."""

    @property
    def single_byte(self) -> bool:
        """Whether every character is one byte (so UTF-8 text reads as mojibake, not errors)."""
        return self.name != "utf-8"

    def header_problem(self, line: str) -> str | None:
        """Return why the header line is not text in this encoding, or None."""
        if "\x00" in line or _has_surrogates(line):
            return f"the header is not {self.label} text; {self.advice}"
        return None

    def row_problem(self, joined: str) -> str | None:
        """Return why the cells of a row (joined) are not text in this encoding, or None."""
        if "\x00" in joined:
            return NUL_BYTES
        if joined.isascii():
            return None
        if self.single_byte and _looks_like_utf8(joined, self.name):
            return f"row looks like UTF-8 text, not {self.name}: import the file without --encoding"
        if _has_surrogates(joined):
            return self.undecodable
        if self.controls and _C1_CONTROLS.search(joined):
            return self.controls
        return None


UTF_8 = TextEncoding(
    "utf-8",
    "UTF-8",
    "save the file as CSV UTF-8 (with or without BOM) or import it with --encoding cp1252",
    "row is not UTF-8 text: save the file as CSV UTF-8 or import it with --encoding cp1252",
)
CP1252 = TextEncoding(
    "cp1252",
    "cp1252",
    "check the file's encoding",
    "row holds a byte cp1252 does not define (0x81, 0x8D, 0x8F, 0x90 or 0x9D): "
    "check the file's encoding",
)
LATIN_1 = TextEncoding(
    "latin-1",
    "latin-1",
    "check the file's encoding",
    "row is not latin-1 text",  # never: latin-1 reads every byte
    controls="row holds bytes 0x80-0x9F, control codes in latin-1: import it with "
    "--encoding cp1252",
)
ENCODINGS: dict[str, TextEncoding] = {
    "utf-8": UTF_8,
    "cp1252": CP1252,
    "windows-1252": CP1252,
    "latin-1": LATIN_1,
    "iso-8859-1": LATIN_1,
}
"""The ``--encoding`` values (any letter case), aliases included."""
ACCEPTED = "utf-8 (the default), cp1252 (or windows-1252), latin-1 (or iso-8859-1)"


def text_encoding(name: str) -> TextEncoding:
    """Return the encoding ``--encoding NAME`` stands for, or raise ValueError listing them."""
    found = ENCODINGS.get(name.strip().casefold())
    if found is None:
        raise ValueError(f"unknown encoding {name!r}; accepted: {ACCEPTED}")
    return found


def open_csv(path: Path, encoding: TextEncoding = UTF_8) -> tuple[IO[str], bool]:
    """Open a CSV file as text in this encoding; return it and whether it had a UTF-8 BOM."""
    try:
        with path.open("rb") as probe:
            start = probe.read(4)
    except OSError as exc:
        raise HeaderError(f"cannot read {path}: {exc.strerror or exc}") from None
    if start.startswith(UTF16_BOMS):
        raise HeaderError(
            f"{path} is UTF-16 text; save it as CSV UTF-8 (with or without BOM) and import again"
        )
    bom = start.startswith(UTF8_BOM)
    if bom and encoding.single_byte:
        raise HeaderError(
            f"{path} starts with a UTF-8 byte order mark: it looks like CSV UTF-8; "
            f"import it without --encoding {encoding.name}"
        )
    # surrogateescape: a row that is not text is rejected on its own, the rest still imports.
    codec = "utf-8-sig" if bom else encoding.name
    return path.open("r", encoding=codec, errors="surrogateescape", newline=""), bom


def _has_surrogates(text: str) -> bool:
    # Undecodable bytes arrive as lone surrogates (errors="surrogateescape").
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _looks_like_utf8(text: str, codec: str) -> bool:
    """Whether the bytes of non-ASCII text read in a single-byte codec are valid UTF-8.

    Text in cp1252 or latin-1 rarely is ("é" alone is not a UTF-8 sequence), UTF-8 read as
    one of them always is ("é" reads as "Ã©"): publishing it would change the customer's text.
    """
    try:
        text.encode(codec, "surrogateescape").decode("utf-8")
    except UnicodeError:
        return False
    return True
