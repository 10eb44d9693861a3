"""The rejected-rows file written beside an import: ``row, reason`` then the original columns."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from types import TracebackType
from typing import IO

REJECTED_SUFFIX = ".rejected.csv"


def rejected_path(source: Path) -> Path:
    """Return where the rejected rows of ``source`` go: ``<file>.rejected.csv`` beside it."""
    return source.with_name(source.name + REJECTED_SUFFIX)


class RejectedFile:
    """Stream rejected rows into a CSV in the source file's dialect; removed if none come."""

    def __init__(self, path: Path, header: tuple[str, ...], *, delimiter: str, bom: bool) -> None:
        self.path = path
        self.count = 0
        self._header = header
        # Opened at once so that an unwritable folder stops the import before anything is sent.
        # surrogateescape writes back the exact bytes of cells that were not UTF-8.
        self._file: IO[str] = path.open(
            "w", encoding="utf-8-sig" if bom else "utf-8", errors="surrogateescape", newline=""
        )
        # Rows are formatted into memory and written in blocks: a file write per row cost
        # more than the rest of a rejected row's handling (900,000 rejected rows: seconds).
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, delimiter=delimiter)
        self._writer.writerow(("row", "reason", *header))

    def write(self, row: int, reason: str, cells: list[str]) -> None:
        """Append one rejected row."""
        self._writer.writerow((row, reason, *cells))
        self.count += 1
        if self._buffer.tell() > self.BLOCK:
            self._flush()

    BLOCK = 1 << 16

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
