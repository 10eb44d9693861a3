"""``loyalty customer show``: one customer as the store holds it (the contract's read view)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from admin import client
from admin.outcome import Outcome
from bootstrap import open_repository
from cli.commanding import ActorOpt, IdOpt, TimeoutOpt, WaitOpt, publish
from cli.console import make_console
from settings import SettingsError, load_settings
from workers.views import customer_view

app = typer.Typer(help="Read customers from the store.", no_args_is_help=True)
console = make_console()
errors = make_console(stderr=True)

ACTIVITY_SHOWN = 50


async def _read(customer_id: str) -> dict[str, Any] | None:
    repository = await open_repository(load_settings())
    try:
        stored = await repository.get(customer_id)
        if stored is None:
            return None
        page = await repository.activity(customer_id, limit=ACTIVITY_SHOWN)
        return customer_view(stored.state, list(page.entries))
    finally:
        await repository.close()


def _print(view: dict[str, Any]) -> None:
    name = " ".join(p for p in (view["first_name"], view["last_name"]) if p) or "-"
    console.print(
        f"[bold]{view['customer_id']}[/bold]  {name} <{view['email']}>  ({view['status']})"
    )
    expires = view["tier_expires_at"] or "no expiry"
    console.print(
        f"points {view['points_balance']} (earned {view['points_earned']})   "
        f"stamps {view['stamps_balance']}   tier {view['tier'] or '-'} ({expires})   "
        f"spend {view['lifetime_spend']}"
    )
    if view.get("points_pending"):
        console.print(f"pending points {view['points_pending']}")
    rewards = Table("reward", "code", "origin", "status", "granted", title="rewards")
    for r in view["rewards"]:
        rewards.add_row(r["reward_id"], r["code"] or "-", r["origin"], r["status"], r["granted_at"])
    console.print(rewards)
    activity = Table("at", "kind", "delta", "notes", "cause", title="activity (newest first)")
    for entry in view["activity"]:
        notes = "; ".join(
            f"{label}: {entry[key]}"
            for key, label in (("customer_note", "customer"), ("internal_note", "internal"))
            if key in entry
        )
        details = entry.get("details", {})
        if "reason" in details:
            notes = "; ".join(filter(None, [notes, str(details["reason"])]))
        delta = entry.get("delta")
        activity.add_row(
            entry["at"],
            entry["kind"],
            "" if delta is None else f"{delta:+d}",
            notes,
            f"{entry['cause']['type']} {entry['cause']['id']}",
        )
    console.print(activity)


@app.command()
def show(
    customer_id: Annotated[str, typer.Argument(help="The customer's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the contract's JSON.")] = False,
) -> None:
    """Show balances, tier and expiry, rewards and the activity log (newest first)."""
    try:
        view = asyncio.run(_read(customer_id))
    except SettingsError as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    if view is None:
        errors.print(
            f"[red]error:[/red] no customer {customer_id!r} in the store; check the id (it is "
            "the storefront's customer id) or that the worker has applied its customer.upserted"
        )
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(view, indent=2, ensure_ascii=False))
    else:
        _print(view)


def _forgotten(outcome: Outcome) -> list[str]:
    state = outcome.state
    return [
        f"applied: {state.customer_id} is forgotten (email, names and notes erased); points "
        f"balance {state.points_balance}, stamps balance {state.stamps_balance} and tier "
        f"{state.tier or '-'} kept"
    ]


@app.command()
def forget(
    customer_id: Annotated[str, typer.Argument(help="The customer's id.")],
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why (checked, not stored: it may name the person)."),
    ] = None,
    command_id: IdOpt = None,
    actor: ActorOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Publish customer.forget: erase email, names and notes; balances and ledger stay."""
    publish(
        customer_id,
        None,
        lambda cid: client.forget_customer(cid, reason=reason, command_id=command_id, actor=actor),
        wait=wait,
        timeout=timeout,
        describe=_forgotten,
    )
