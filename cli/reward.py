"""``loyalty reward check|rebuild``: ask the coupon registry about a code, or recreate it.

``redeem`` and ``revoke`` (admin commands) live in ``cli.reward_grants`` and join this group.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

import bootstrap
from cli.console import make_console
from consumers.rewards import (
    COUPONS_COLLECTION,
    CouponCheck,
    CouponRegistry,
    ensure_indexes,
    judge,
)
from models.state import CustomerState
from settings import Settings, SettingsError, get_settings
from store.documents import unpack_state
from store.indexes import CUSTOMERS

app = typer.Typer(
    help="Rewards: redeem, revoke, check a code, rebuild the coupon registry.",
    no_args_is_help=True,
)
console = make_console()
errors = make_console(stderr=True)

EXIT_NOT_VALID = 3
"""Exit code of ``check`` for a code a checkout must refuse (used, revoked, expired, unknown)."""


@app.callback()
def _group() -> None:
    """Rewards: redeem, revoke, check a code, rebuild the coupon registry."""


def _settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as exc:
        errors.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None


async def _check(settings: Settings, code: str) -> CouponCheck:
    client = bootstrap.mongo_client(settings)
    try:
        registry = CouponRegistry(client[settings.mongo_database][COUPONS_COLLECTION])
        return judge(code, await registry.find(code), datetime.now(UTC))
    finally:
        await client.close()


@app.command("check")
def check(
    code: Annotated[str, typer.Argument(help="The reward code a customer gave at checkout.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """Tell whether a reward code is valid, used, revoked, expired or unknown, and why."""
    settings = _settings()
    answer = asyncio.run(_check(settings, code))
    if as_json:
        console.print_json(json.dumps(answer.as_json()))
    else:
        colour = "green" if answer.status == "valid" else "red"
        console.print(
            f"{answer.code}: [{colour}]{answer.status}[/{colour}] - {answer.reason}",
            highlight=False,
        )
        details: dict[str, Any] = {"reward": answer.reward_id, "customer": answer.customer_id}
        for label, value in details.items():
            if value:
                console.print(f"  {label}: {value}", highlight=False)
    if answer.status != "valid":
        raise typer.Exit(EXIT_NOT_VALID)


async def _rebuild(settings: Settings) -> int:
    client = bootstrap.mongo_client(settings)
    try:
        database = client[settings.mongo_database]
        coupons = database[COUPONS_COLLECTION]
        await ensure_indexes(coupons)

        async def customers() -> AsyncIterator[CustomerState]:
            async for document in database[CUSTOMERS].find({}, {"state": 1}):
                yield unpack_state(document)

        return await CouponRegistry(coupons).rebuild(customers())
    finally:
        await client.close()


@app.command("rebuild")
def rebuild() -> None:
    """Recreate the coupon registry from the customer documents, which own the grants."""
    settings = _settings()
    written = asyncio.run(_rebuild(settings))
    console.print(f"{written} coupons written from the customer documents", highlight=False)
