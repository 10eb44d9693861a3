"""Bulk CSV imports: stream a file into one command per valid row, in three pipelined stages.

1. parse + validate (``admin.csvrows``) in chunks of ``lookup_batch`` valid rows;
2. resolve each chunk's emails to customers with one store lookup, several chunks in flight;
3. publish the chunk's commands in row order and write its rejected rows.

Memory stays bounded: the file is read as a stream, at most ``lookups_in_flight`` chunks wait
between the stages, the duplicate check keeps 12 bytes per email, and rejected rows go
straight to ``<file>.rejected.csv``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from admin.csvrows import (
    SPECS,
    ImportKind,
    ParsedRow,
    RejectedRow,
    RowChecker,
    ValidRow,
    parse_chunks,
    read_header,
)
from admin.csvtext import UTF_8, HeaderError, TextEncoding, open_csv
from admin.rejected import RejectedFile, rejected_path
from models.values import format_timestamp
from topics import names

IMPORT_SOURCE = "import"
BATCH_ID_LIMIT = 180
"""Command ids are ``<batch_id>:<row>`` and ids are at most 200 characters."""
UNKNOWN_CUSTOMER = "unknown customer: no customer has this email"
"""Kept short: it is written once per unknown row (the summary says what to do, once)."""

TOPIC_BY_KIND: dict[ImportKind, str] = {
    "tiers": names.TIER_COMMANDS,
    "points": names.ADJUSTMENTS,
    "stamps": names.ADJUSTMENTS,
}


class EmailDirectory(Protocol):
    """Resolve normalised (casefolded) emails to customer ids; unknown ones are left out."""

    async def email_owners(self, emails: Collection[str]) -> dict[str, str]:
        """Return {email_key: customer_id} for the emails that belong to a customer."""
        ...


Delivered = Callable[[bool], None]


class CommandSink(Protocol):
    """Where import commands go: ``send`` may return before delivery, ``flush`` waits for all."""

    async def send(self, topic: str, key: bytes, value: bytes, delivered: Delivered) -> None:
        """Queue one message; call ``delivered(ok)`` once the broker has it (or gave up)."""
        ...

    async def flush(self) -> None:
        """Wait until every queued message is delivered or has failed."""
        ...


@dataclass
class StageClock:
    """Busy time of each stage: the time its own work took, overlapping the others."""

    parse: float = 0.0
    """CPU seconds of this thread: parsing is pure CPU, and on a shared machine wall time
    would count the time other processes had the CPU."""
    lookup: float = 0.0
    publish: float = 0.0
    report: float = 0.0
    """Writing rejected rows and counting (between the lookup and the publish)."""
    total: float = 0.0
    looked_up: int = 0
    _lookups_running: int = 0
    _lookup_since: float = 0.0

    def lookup_started(self) -> None:
        """Count lookup time while at least one lookup is in flight."""
        if self._lookups_running == 0:
            self._lookup_since = time.perf_counter()
        self._lookups_running += 1

    def lookup_done(self, keys: int) -> None:
        """Close a lookup of ``keys`` emails."""
        self._lookups_running -= 1
        self.looked_up += keys
        if self._lookups_running == 0:
            self.lookup += time.perf_counter() - self._lookup_since


@dataclass
class ImportReport:
    """What an import did; ``complete`` when every valid row was published (or dry run)."""

    kind: ImportKind
    path: Path
    batch_id: str
    dry_run: bool
    encoding: str = UTF_8.name
    rows: int = 0
    blank_rows: int = 0
    valid: int = 0
    published: int = 0
    failed: int = 0
    first_failed_row: int | None = None
    rejected: int = 0
    unknown_customers: int = 0
    duplicates: int = 0
    rejected_file: Path | None = None
    tier_spellings: dict[tuple[str, str], int] = field(default_factory=dict)
    clock: StageClock = field(default_factory=StageClock)
    first_rejections: list[tuple[int, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether every valid row reached Kafka."""
        return self.dry_run or self.published == self.valid

    def as_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data (``loyalty import ... --json``)."""
        clock = self.clock
        return {
            "batch_id": self.batch_id,
            "kind": self.kind,
            "file": str(self.path),
            "encoding": self.encoding,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "valid": self.valid,
            "published": self.published,
            "not_published": self.valid - self.published if not self.dry_run else 0,
            "rejected": self.rejected,
            "unknown_customers": self.unknown_customers,
            "duplicates": self.duplicates,
            "rejected_file": str(self.rejected_file) if self.rejected_file else None,
            "tier_spellings": [
                {"written": written, "tier": tier, "rows": rows}
                for (written, tier), rows in sorted(self.tier_spellings.items())
            ],
            "seconds": {
                "parse": round(clock.parse, 3),
                "lookup": round(clock.lookup, 3),
                "publish": round(clock.publish, 3),
                "report": round(clock.report, 3),
                "total": round(clock.total, 3),
            },
            "looked_up": clock.looked_up,
        }


@dataclass(frozen=True)
class ImportOptions:
    """How to run one import."""

    kind: ImportKind
    path: Path
    tier_names: tuple[str, ...]
    batch_id: str | None = None
    dry_run: bool = False
    actor: str | None = None
    occurred_at: datetime | None = None
    namespace: str = ""
    encoding: TextEncoding = UTF_8
    """What the file is read as; the batch id does not depend on it (see ``default_batch_id``)."""
    lookup_batch: int = 100
    lookups_in_flight: int = 8
    parse_chunk: int = 500
    """Rows parsed between two yields to the event loop (keeps lookups and sends moving)."""


Progress = Callable[[int, int], None]
"""Called with (rows handled, bytes read) as the import moves on."""


def file_digest(path: Path) -> str:
    """Return the SHA-256 of the file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_batch_id(kind: ImportKind, path: Path) -> str:
    """Return the batch id of a file: its kind and a digest of its bytes.

    Not of the encoding it is read in: importing a file again with ``--encoding cp1252``
    after its accented rows were rejected as not UTF-8 must not apply its other rows twice.
    """
    return f"{kind}-{file_digest(path)[:20]}"


def check_batch_id(batch_id: str) -> str:
    """Return the batch id, or raise ValueError saying what a batch id may be."""
    if (
        not batch_id
        or len(batch_id) > BATCH_ID_LIMIT
        or not batch_id.isprintable()
        or any(ch.isspace() for ch in batch_id)
    ):
        raise ValueError(
            f"batch id {batch_id!r} must be 1 to {BATCH_ID_LIMIT} printable characters "
            "without spaces"
        )
    return batch_id


_TIER_PAYLOAD = {"tier", "notify", "entry_rewards"}


class _Envelopes:
    """Build the command of a valid row once its customer is known.

    The fields shared by every row are serialised once; per row only the id, the row number,
    the customer id and the payload are (a tier import's payloads are dumped once per tier).
    ``tests/unit/test_import_pipeline.py`` checks the result against the contract's models.
    """

    def __init__(self, options: ImportOptions, batch_id: str, occurred_at: datetime) -> None:
        spec = SPECS[options.kind]
        self.topic = options.namespace + TOPIC_BY_KIND[options.kind]
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        dumps = self._dumps
        self._id_prefix = dumps(batch_id)[:-1] + ":"  # the JSON string, left open for the row
        shared = {"type": spec.message_type, "occurred_at": format_timestamp(occurred_at)}
        shared["source"] = IMPORT_SOURCE
        if options.actor:
            shared["actor"] = options.actor
        self._shared = dumps(shared)[1:-1]
        self._batch = '"batch":{"id":' + dumps(batch_id) + ',"row":'
        self._tier_payloads: dict[str, str] = {}

    def _payload(self, data: dict[str, Any]) -> str:
        if data.keys() != _TIER_PAYLOAD:
            return self._dumps(data)
        tier = data["tier"]
        found = self._tier_payloads.get(tier)
        if found is None:
            found = self._tier_payloads[tier] = self._dumps(data)
        return found

    def value(self, row: ValidRow, customer_id: str) -> bytes:
        """Return the JSON envelope of this row's command for this customer."""
        number = str(row.row)
        text = (
            '{"id":'
            + self._id_prefix
            + number
            + '","customer_id":'
            + self._dumps(customer_id)
            + ","
            + self._shared
            + ","
            + self._batch
            + number
            + ',"suppress_notifications":true},"data":'
            + self._payload(row.data)
            + "}"
        )
        return text.encode()


Chunk = list[ParsedRow]


async def run_import(
    options: ImportOptions,
    directory: EmailDirectory,
    sink: CommandSink | None,
    *,
    progress: Progress | None = None,
) -> ImportReport:
    """Import one CSV file; raise HeaderError (before sending anything) when it cannot be read."""
    started = time.perf_counter()
    spec = SPECS[options.kind]
    encoding = options.encoding
    stream, bom = open_csv(options.path, encoding)
    with stream:
        batch_id = check_batch_id(options.batch_id or default_batch_id(options.kind, options.path))
        header = read_header(stream, spec, encoding)
        checker = RowChecker(spec, header, options.tier_names, encoding)
        dry_run = options.dry_run or sink is None
        report = ImportReport(options.kind, options.path, batch_id, dry_run, encoding.name)
        try:
            rejected = RejectedFile(
                rejected_path(options.path),
                header.names,
                delimiter=header.delimiter,
                encoding=encoding.name,
                bom=bom,
            )
        except OSError as exc:
            raise HeaderError(
                f"cannot write the rejected rows beside the file ({exc.strerror or exc}); "
                "copy the file into a folder you can write to"
            ) from None
        with rejected:
            envelopes = _Envelopes(options, batch_id, options.occurred_at or datetime.now(UTC))
            pipeline = _Pipeline(options, directory, None if report.dry_run else sink, report)
            pipeline.rejected = rejected
            pipeline.envelopes = envelopes
            chunks = parse_chunks(
                stream,
                checker,
                header.delimiter,
                size=options.lookup_batch,
                limit=options.parse_chunk,
            )
            position = stream.buffer.tell if hasattr(stream, "buffer") else (lambda: 0)
            await pipeline.run(chunks, progress, position)
        report.rows = checker.stats.rows
        report.blank_rows = checker.stats.blank
        report.tier_spellings = dict(checker.stats.tier_spellings)
        report.rejected = rejected.count
        report.rejected_file = rejected.path if rejected.count else None
    report.clock.total = time.perf_counter() - started
    return report


class _Pipeline:
    """The three stages joined by a bounded queue of (chunk, lookup task)."""

    rejected: RejectedFile
    envelopes: _Envelopes

    def __init__(
        self,
        options: ImportOptions,
        directory: EmailDirectory,
        sink: CommandSink | None,
        report: ImportReport,
    ) -> None:
        self.options = options
        self.directory = directory
        self.sink = sink
        self.report = report
        self.clock = report.clock
        self.handled = 0

    async def run(
        self, chunks: Iterator[Chunk], progress: Progress | None, position: Callable[[], int]
    ) -> None:
        queue: asyncio.Queue[tuple[Chunk, asyncio.Task[dict[str, str]]] | None] = asyncio.Queue(
            maxsize=self.options.lookups_in_flight
        )
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._publish(queue, progress, position))
                group.create_task(self._parse(chunks, queue))
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None  # one stage failed; the other was cancelled
        finally:
            # Lookups still queued when the import fails must not outlive it.
            while not queue.empty():
                item = queue.get_nowait()
                if item is not None:
                    item[1].cancel()
        if self.sink is not None:
            flush_started = time.perf_counter()
            await self.sink.flush()
            self.clock.publish += time.perf_counter() - flush_started

    async def _parse(
        self,
        chunks: Iterator[Chunk],
        queue: asyncio.Queue[tuple[Chunk, asyncio.Task[dict[str, str]]] | None],
    ) -> None:
        while True:
            begun = time.thread_time()
            chunk = next(chunks, None)
            self.clock.parse += time.thread_time() - begun
            if chunk is None:
                await queue.put(None)
                return
            keys = [row.email_key for row in chunk if isinstance(row, ValidRow)]
            task = asyncio.create_task(self._lookup(keys))
            await queue.put((chunk, task))
            await asyncio.sleep(0)  # let the lookups and the producer run between chunks

    async def _lookup(self, keys: list[str]) -> dict[str, str]:
        if not keys:
            return {}
        self.clock.lookup_started()
        try:
            return await self.directory.email_owners(keys)
        finally:
            self.clock.lookup_done(len(keys))

    async def _publish(
        self,
        queue: asyncio.Queue[tuple[Chunk, asyncio.Task[dict[str, str]]] | None],
        progress: Progress | None,
        position: Callable[[], int],
    ) -> None:
        while (item := await queue.get()) is not None:
            chunk, task = item
            found = await task
            begun = time.perf_counter()
            ready: list[tuple[ValidRow, str]] = []
            for parsed in chunk:
                if isinstance(parsed, RejectedRow):
                    self._reject(parsed.row, parsed.reason, parsed.cells)
                    continue
                customer_id = found.get(parsed.email_key)
                if customer_id is None:
                    self.report.unknown_customers += 1
                    self._reject(parsed.row, UNKNOWN_CUSTOMER, parsed.cells)
                    continue
                ready.append((parsed, customer_id))
            sending = time.perf_counter()
            self.clock.report += sending - begun
            self.report.valid += len(ready)
            if self.sink is not None:
                await self._send(ready)
                self.clock.publish += time.perf_counter() - sending
            self.handled += len(chunk)
            if progress is not None:
                progress(self.handled, position())

    async def _send(self, ready: list[tuple[ValidRow, str]]) -> None:
        assert self.sink is not None
        send, value, topic = self.sink.send, self.envelopes.value, self.envelopes.topic
        for parsed, customer_id in ready:
            delivered = partial(self._delivered, parsed.row)
            await send(topic, customer_id.encode(), value(parsed, customer_id), delivered)

    def _reject(self, row: int, reason: str, cells: list[str]) -> None:
        self.rejected.write(row, reason, cells)
        if reason.startswith("duplicate email"):
            self.report.duplicates += 1
        if len(self.report.first_rejections) < 20:  # the summary shows the first few
            self.report.first_rejections.append((row, reason))

    def _delivered(self, row: int, ok: bool) -> None:
        report = self.report
        if ok:
            report.published += 1
        else:
            report.failed += 1
            if report.first_failed_row is None or row < report.first_failed_row:
                report.first_failed_row = row
