"""``loyalty customer list|export``: customers newest first, filtered; CSV for spreadsheets.

The commands join the ``customer`` group of ``cli.customer`` (see ``cli.main``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated

import typer
from pymongo.errors import PyMongoError
from rich.table import Table

from admin.views import list_rows, write_export
from bootstrap import open_repository
from cli.commanding import fail
from cli.console import make_console
from models.program import ProgramError
from models.state import CustomerState
from program_file import load_program
from settings import Settings, SettingsError, load_settings
from store.repository import CustomerFilter, CustomerRepository, ListCursor

console = make_console()
EXPORT_PAGE = 500


class Status(StrEnum):
    """Customer statuses of the contract."""

    active = "active"
    removed = "removed"
    forgotten = "forgotten"


TierOpt = Annotated[
    str | None, typer.Option("--tier", "-t", help="Only this tier (any letter case).")
]
StatusOpt = Annotated[Status | None, typer.Option("--status", "-s", help="Only this status.")]
EmailOpt = Annotated[
    str | None,
    typer.Option("--email", "-e", help="Only emails containing this text (any letter case)."),
]


def encode_cursor(cursor: ListCursor) -> str:
    """Return the ``--after`` token of a listing cursor."""
    raw = json.dumps([cursor.joined_at.isoformat(), cursor.customer_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> ListCursor:
    """Return the cursor of an ``--after`` token, or raise BadParameter."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        at, customer_id = json.loads(raw)
        return ListCursor(joined_at=datetime.fromisoformat(at), customer_id=str(customer_id))
    except (ValueError, TypeError, binascii.Error):
        raise typer.BadParameter(
            "not a token printed by `loyalty customer list`", param_hint="--after"
        ) from None


def _filter(
    settings: Settings, tier: str | None, status: Status | None, email: str | None
) -> CustomerFilter:
    canonical = None
    if tier is not None:
        try:
            program = load_program(settings.program_file)
        except ProgramError as exc:
            raise fail(str(exc)) from None
        found = program.find_tier(tier)
        if found is None:
            known = ", ".join(program.tier_names) or "(none)"
            raise typer.BadParameter(
                f"unknown tier {tier!r}; known tiers: {known}", param_hint="--tier"
            )
        canonical = found.name
    return CustomerFilter(
        tier=canonical, status=status.value if status else None, email_contains=email or None
    )


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise fail(str(exc)) from None


def list_customers(
    tier: TierOpt = None,
    status: StatusOpt = None,
    email: EmailOpt = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", help="Customers per page.", min=1, max=1000)
    ] = 50,
    after: Annotated[
        str | None, typer.Option("--after", help="Continue after a page (the token it printed).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List customers, most recently joined first; filter by tier, status or email."""
    settings = _settings()
    where = _filter(settings, tier, status, email)
    cursor = decode_cursor(after) if after else None

    async def page() -> tuple[tuple[CustomerState, ...], ListCursor | None]:
        repository = await open_repository(settings)
        try:
            found = await repository.list_customers(where, after=cursor, limit=limit)
            return found.customers, found.next
        finally:
            await repository.close()

    try:
        customers, following = asyncio.run(page())
    except PyMongoError as exc:
        raise fail(f"the store did not answer: {exc}") from None
    token = encode_cursor(following) if following else None
    if as_json:
        body = {
            "customers": [dict(zip(_COLUMNS, row, strict=True)) for row in list_rows(customers)],
            "next": token,
        }
        typer.echo(json.dumps(body, indent=2))
        return
    table = Table(*_COLUMNS)
    for row in list_rows(customers):
        table.add_row(*row)
    console.print(table)
    if token:
        console.print(f"more: add --after {token}", highlight=False)
    elif not customers:
        console.print("no customers match", highlight=False)


_COLUMNS = ("customer_id", "email", "name", "status", "tier", "points", "stamps", "joined")


async def _every(
    repository: CustomerRepository, where: CustomerFilter
) -> AsyncIterator[CustomerState]:
    after: ListCursor | None = None
    while True:
        page = await repository.list_customers(where, after=after, limit=EXPORT_PAGE)
        for state in page.customers:
            yield state
        if page.next is None:
            return
        after = page.next


def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
    ] = None,
    tier: TierOpt = None,
    status: StatusOpt = None,
    email: EmailOpt = None,
) -> None:
    """Write customers as CSV (formula-like text cells get a ' so no spreadsheet runs them)."""
    settings = _settings()
    where = _filter(settings, tier, status, email)

    async def run(out: IO[str]) -> int:
        repository = await open_repository(settings)
        try:
            return await write_export(out, _every(repository, where))
        finally:
            await repository.close()

    try:
        if output is None:
            count = asyncio.run(run(sys.stdout))
        else:
            with output.open("w", encoding="utf-8", newline="") as out:
                count = asyncio.run(run(out))
    except OSError as exc:
        raise fail(f"cannot write {output}: {exc.strerror or exc}") from None
    except PyMongoError as exc:
        raise fail(f"the store did not answer: {exc}") from None
    if output is not None:
        make_console(stderr=True).print(f"{count} customers written to {output}", highlight=False)
