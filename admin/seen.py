"""A compact set of the emails an import has seen, with the row that first named each.

The same table keeps the row numbers a rejected-rows file gives (ints hash to themselves).
"""

from __future__ import annotations

import sys
from array import array

_EMPTY = 0
_MASK64 = (1 << 64) - 1
assert sys.hash_info.width == 64, "the duplicate check needs 64-bit string hashes"


class SeenEmails:
    """Open-addressing table of 64-bit email digests and first rows: 12 bytes a slot.

    A Python set of a million email strings takes over 100 MB; this takes 24 MB at a
    million emails, which keeps a million-row import under its memory budget. Two different
    emails share a 64-bit digest with odds of about 1 in 10^7 at a million rows; the worst
    outcome is one row reported as a duplicate, never a row applied twice.
    """

    def __init__(self, capacity: int = 1 << 12) -> None:
        size = 1
        while size < capacity:
            size <<= 1
        self._keys = array("Q", bytes(8 * size))
        self._rows = array("I", bytes(4 * size))
        self._mask = size - 1
        self._used = 0

    def __len__(self) -> int:
        return self._used

    def add(self, key: str | int, row: int) -> int | None:
        """Record ``key`` as first seen on ``row``; return the earlier row if it was seen."""
        # The interpreter's own string hash (SipHash, 64 bits, keyed per process): computed
        # in C and cached on the string; the table lives no longer than the process.
        digest = (hash(key) & _MASK64) or 1  # 0 marks an empty slot
        keys, mask = self._keys, self._mask
        slot = digest & mask
        while True:
            found = keys[slot]
            if found == _EMPTY:
                break
            if found == digest:
                return int(self._rows[slot])
            slot = (slot + 1) & mask
        keys[slot] = digest
        self._rows[slot] = row
        self._used += 1
        if self._used * 10 > mask * 7:  # grow at 70% full: short probe runs, 12-24 MB/M
            self._grow()
        return None

    def _grow(self) -> None:
        old_keys, old_rows = self._keys, self._rows
        size = (self._mask + 1) * 2
        self._keys = array("Q", bytes(8 * size))
        self._rows = array("I", bytes(4 * size))
        self._mask = size - 1
        keys, rows, mask = self._keys, self._rows, self._mask
        for digest, row in zip(old_keys, old_rows, strict=True):
            if digest == _EMPTY:
                continue
            slot = digest & mask
            while keys[slot] != _EMPTY:
                slot = (slot + 1) & mask
            keys[slot] = digest
            rows[slot] = row
