"""The rejected-rows file written beside an import: ``row, reason`` then the original columns.

It is written in the input's separator and encoding (a UTF-8 input's BOM too), so the options
that read the input read it back, and it imports again once fixed (a header's ``row`` and
``reason`` columns are not read; this file drops the input's own so they do not pile up).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from admin.csvrows import REJECTED_COLUMNS

REJECTED_SUFFIX = ".rejected.csv"


def rejected_path(source: Path) -> Path:
    """Return where the rejected rows of ``source`` go: ``<file>.rejected.csv`` beside it."""
    return source.with_name(source.name + REJECTED_SUFFIX)


class RejectedFile:
    """Stream rejected rows into a CSV in the source file's dialect; removed if none come."""

    def __init__(
        self,
        path: Path,
        header: tuple[str, ...],
        *,
        delimiter: str,
        encoding: str = "utf-8",
        bom: bool = False,
    ) -> None:
        self.path = path
        self.count = 0
        self._encoding = encoding
        self._dropped = {
            i for i, name in enumerate(header) if name.strip().casefold() in REJECTED_COLUMNS
        }
        # Opened at once so that an unwritable folder stops the import before anything is sent.
        # surrogateescape writes back the exact bytes of cells the encoding could not read.
        self._file: IO[str] = path.open(
            "w", encoding="utf-8-sig" if bom else encoding, errors="surrogateescape", newline=""
        )
        # Rows are formatted into memory and written in blocks: a file write per row cost
        # more than the rest of a rejected row's handling (900,000 rejected rows: seconds).
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, delimiter=delimiter)
        self._writer.writerow((*REJECTED_COLUMNS, *self._own(header)))

    def write(self, row: int, reason: str, cells: list[str]) -> None:
        """Append one rejected row."""
        if not reason.isascii():
            reason = self._fit(reason)
        self._writer.writerow((row, reason, *(self._own(cells) if self._dropped else cells)))
        self.count += 1
        if self._buffer.tell() > self.BLOCK:
            self._flush()

    BLOCK = 1 << 16

    def _own(self, cells: Sequence[str]) -> list[str]:
        """Return the cells without the input's own ``row`` and ``reason`` columns."""
        return [cell for i, cell in enumerate(cells) if i not in self._dropped]

    def _fit(self, reason: str) -> str:
        """Return the reason in characters the file's encoding has (a tier name may not be)."""
        return reason.encode(self._encoding, "backslashreplace").decode(self._encoding)

    def _flush(self) -> None:
        self._file.write(self._buffer.getvalue())
        self._buffer.seek(0)
        self._buffer.truncate()

    def close(self) -> None:
        """Close the file; delete it when no row was rejected (a stale one would mislead)."""
        self._flush()
        self._file.close()
        if self.count == 0:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> RejectedFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
