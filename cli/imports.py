"""``loyalty import tiers|points|stamps FILE``, ``import template KIND``, ``import status ID``."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from aiokafka.errors import KafkaError
from pymongo.errors import PyMongoError
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from admin.batches import BatchRecord, batch_status
from admin.connections import admin_session, load_tier_names
from admin.csvrows import SPECS, ImportKind, template
from admin.csvtext import ACCEPTED, UTF_8, HeaderError, TextEncoding, text_encoding
from admin.imports import ImportOptions, ImportReport, check_batch_id, run_import
from admin.sinks import KafkaSink
from cli.commanding import plural, quiet_kafka_retries
from cli.console import make_console
from settings import Settings, SettingsError, load_settings
from topics.admin import TopicLayoutError

app = typer.Typer(
    help="Bulk CSV imports: tiers, points and stamps of existing customers, no emails sent.",
    no_args_is_help=True,
)
errors = make_console(stderr=True)
PLAIN_PROGRESS_SECONDS = 10.0


class Kind(StrEnum):
    """The import kinds (typer shows them as choices)."""

    tiers = "tiers"
    points = "points"
    stamps = "stamps"


FileArg = Annotated[
    Path, typer.Argument(help="The CSV file (UTF-8 unless --encoding; comma, semicolon or tab).")
]
BatchOpt = Annotated[
    str | None,
    typer.Option(
        "--batch-id",
        help="Name the batch (default: a digest of the file); importing again with the same "
        "batch id changes nothing.",
    ),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Validate and look up customers; publish nothing.")
]
ActorOpt = Annotated[
    str | None, typer.Option("--actor", help="Who runs the import (recorded on each command).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Also print the report as JSON on stdout.")]
EncodingOpt = Annotated[
    str,
    typer.Option(
        "--encoding",
        help=f'What the file is written in: {ACCEPTED}. Excel\'s plain "CSV" on a Western '
        "Windows is cp1252. The rejected-rows file is written in the same encoding.",
    ),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


class _ProgressView:
    """A rich bar on a terminal, a plain line every few seconds otherwise."""

    def __init__(self, path: Path) -> None:
        self.size = path.stat().st_size if path.exists() else 0
        self.bar: Progress | None = None
        self.last_line = time.monotonic()
        if sys.stderr.isatty():
            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[rows]} rows"),
                TimeRemainingColumn(),
                console=errors,
                transient=True,
            )
            self.task = self.bar.add_task(f"importing {path.name}", total=self.size, rows=0)

    def __enter__(self) -> _ProgressView:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def update(self, rows: int, position: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=position, rows=rows)
            return
        now = time.monotonic()
        if now - self.last_line >= PLAIN_PROGRESS_SECONDS:
            self.last_line = now
            percent = f" ({100 * position / self.size:.0f}% of the file)" if self.size else ""
            errors.print(f"imported {rows} rows{percent}", highlight=False)


def _summary(report: ImportReport) -> None:
    mode = "dry run of a " if report.dry_run else ""
    read_as = "" if report.encoding == UTF_8.name else f" read as {report.encoding}"
    errors.print(
        f"{mode}{report.kind} import of {report.path.name}{read_as}, batch {report.batch_id}",
        highlight=False,
    )
    verb = "valid (nothing published)" if report.dry_run else "published"
    count = report.valid if report.dry_run else report.published
    errors.print(
        f"  {plural(report.rows, 'row')}: {count} {verb}, {report.rejected} rejected "
        f"({plural(report.unknown_customers, 'unknown customer')}, "
        f"{plural(report.duplicates, 'repeated email')}, "
        f"{report.rejected - report.unknown_customers - report.duplicates} invalid)",
        highlight=False,
    )
    for (written, tier), rows in sorted(report.tier_spellings.items()):
        errors.print(f"  tier {written!r} read as {tier} ({plural(rows, 'row')})", highlight=False)
    for row, reason in report.first_rejections:
        errors.print(f"  row {row}: {reason}", highlight=False)
    if report.unknown_customers:
        errors.print(
            "  unknown customers are never created: add them first, then import their rows again",
            highlight=False,
        )
    if report.rejected > len(report.first_rejections):
        errors.print(
            f"  ... {report.rejected - len(report.first_rejections)} more", highlight=False
        )
    if report.rejected_file is not None:
        like = "" if report.encoding == UTF_8.name else f" ({report.encoding}, like the file)"
        errors.print(f"  rejected rows: {report.rejected_file}{like}", highlight=False)
    if not report.dry_run and report.complete:
        errors.print(
            f"  the workers apply it now; follow with `loyalty import status {report.batch_id}`",
            highlight=False,
        )


async def _import(settings: Settings, options: ImportOptions) -> ImportReport:
    started = datetime.now(UTC)
    with _ProgressView(options.path) as view:
        async with admin_session(settings, publish=not options.dry_run) as session:
            sink = None if session.producer is None else KafkaSink(session.producer)
            report: ImportReport | None = None

            async def record(finished: datetime | None) -> None:
                if report is not None and not options.dry_run:
                    await session.batches.save(BatchRecord.from_report(report, started, finished))

            try:
                report = await run_import(options, session.repository, sink, progress=view.update)
            finally:
                await record(datetime.now(UTC))
            return report


def _run(
    kind: ImportKind,
    file: Path,
    batch_id: str | None,
    dry_run: bool,
    actor: str | None,
    as_json: bool,
    encoding_name: str,
) -> None:
    try:
        if batch_id is not None:
            check_batch_id(batch_id)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--batch-id") from None
    encoding = _encoding(encoding_name)
    try:
        settings = load_settings()
        tier_names = load_tier_names(settings) if kind == "tiers" else ()
    except (SettingsError, ValueError) as exc:
        raise _fail(str(exc)) from None
    quiet_kafka_retries()
    # An import allocates millions of short-lived objects that reference counting frees; the
    # cycle collector's scans of the start-up objects cost a fifth of the parse time. Freeze
    # those and collect the young generation less often (this process only runs the import).
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    options = ImportOptions(
        kind,
        file,
        tier_names,
        batch_id=batch_id,
        dry_run=dry_run,
        actor=actor,
        namespace=settings.topic_namespace,
        encoding=encoding,
    )
    try:
        report = asyncio.run(_import(settings, options))
    except HeaderError as exc:
        raise _fail(str(exc)) from None
    except (KafkaError, TopicLayoutError) as exc:
        raise _fail(
            f"publishing stopped: {exc}. Import the file again with the same batch id: rows "
            "already published are not applied twice"
        ) from None
    except PyMongoError as exc:
        raise _fail(f"the store did not answer: {exc}; import again once it is up") from None
    _summary(report)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    if not report.complete:
        raise _fail(
            f"{report.valid - report.published} valid rows were not published (first: row "
            f"{report.first_failed_row}); import the file again with --batch-id "
            f"{report.batch_id} (rows already published are not applied twice)"
        )


def _encoding(name: str) -> TextEncoding:
    try:
        return text_encoding(name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--encoding") from None


@app.command("tiers")
def tiers(
    file: FileArg,
    batch_id: BatchOpt = None,
    dry_run: DryRunOpt = False,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
    encoding: EncodingOpt = UTF_8.name,
) -> None:
    """Put existing customers in a tier: columns email, tier (no entry rewards, no email)."""
    _run("tiers", file, batch_id, dry_run, actor, as_json, encoding)


@app.command("points")
def points(
    file: FileArg,
    batch_id: BatchOpt = None,
    dry_run: DryRunOpt = False,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
    encoding: EncodingOpt = UTF_8.name,
) -> None:
    """Adjust points: columns email, points (+internal_note, customer_note, expires_in_months)."""
    _run("points", file, batch_id, dry_run, actor, as_json, encoding)


@app.command("stamps")
def stamps(
    file: FileArg,
    batch_id: BatchOpt = None,
    dry_run: DryRunOpt = False,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
    encoding: EncodingOpt = UTF_8.name,
) -> None:
    """Adjust stamps: columns email, stamps (+internal_note, customer_note)."""
    _run("stamps", file, batch_id, dry_run, actor, as_json, encoding)


@app.command("template")
def template_command(kind: Annotated[Kind, typer.Argument(help="tiers, points or stamps")]) -> None:
    """Print a sample file of this kind with the right header."""
    typer.echo(template(kind.value), nl=False)


@app.command("status")
def status(
    batch_id: Annotated[str, typer.Argument(help="The batch id the import printed.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show how many rows of a batch were published, applied and refused (and why)."""
    try:
        settings = load_settings()
        found = asyncio.run(_status(settings, batch_id))
    except SettingsError as exc:
        raise _fail(str(exc)) from None
    except PyMongoError as exc:
        raise _fail(f"the store did not answer: {exc}") from None
    if found is None:
        raise _fail(
            f"no import batch {batch_id!r}: nothing was published under this id (a dry run "
            "keeps no record); check the id the import printed"
        )
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    _print_status(found)


async def _status(settings: Settings, batch_id: str) -> dict[str, Any] | None:
    async with admin_session(settings, publish=False) as session:
        return await batch_status(batch_id, session.batches, session.repository)


def _print_status(found: dict[str, Any]) -> None:
    console = make_console()
    pending = found.get("pending")
    console.print(f"batch {found['batch_id']}", highlight=False)
    console.print(
        f"  rows {found['rows']}, published {found['published']}, applied {found['applied']}, "
        f"refused {found['refused']}"
        + (f", rejected at import {found['rejected']}" if found.get("rejected") is not None else "")
        + (f", waiting for the workers {pending}" if pending else ""),
        highlight=False,
    )
    console.print("  done" if found.get("done") else "  in progress", highlight=False)
    for refusal in found["refusals"][:50]:
        console.print(f"  row {refusal['row']}: {refusal['reason']}", highlight=False)
    if len(found["refusals"]) > 50:
        console.print(f"  ... {len(found['refusals']) - 50} more (see --json)", highlight=False)


__all__ = ["SPECS", "app"]
