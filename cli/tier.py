"""``loyalty tier change|manage``: put a customer (or a group) in a tier by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any

import typer

from admin import client
from admin.outcome import Outcome
from cli.commanding import (
    ActorOpt,
    CustomerOpt,
    EmailOpt,
    IdOpt,
    InternalNoteOpt,
    TimeoutOpt,
    WaitOpt,
    balances,
    fail,
    publish,
    publish_unresolved,
)
from topics.codec import MessageError

app = typer.Typer(help="Change or manage a customer's tier by hand.", no_args_is_help=True)

NotifyOpt = Annotated[
    bool | None,
    typer.Option(
        "--notify/--no-notify",
        help="Email the customer about the change (default: change emails, manage does not).",
        show_default=False,
    ),
]
EntryRewardsOpt = Annotated[
    bool | None,
    typer.Option(
        "--entry-rewards/--no-entry-rewards",
        help="Grant the new tier's entry rewards (default: yes on an upgrade).",
        show_default=False,
    ),
]


class Action(StrEnum):
    """tier.manage actions."""

    upgrade = "upgrade"
    downgrade = "downgrade"
    renew = "renew"


class Strategy(StrEnum):
    """tier.manage strategies."""

    specific = "specific"
    rules = "rules"


class Unit(StrEnum):
    """Unit of a duration read from an extended field."""

    days = "days"
    months = "months"


@app.callback()
def _group() -> None:
    """Change or manage a customer's tier by hand."""


def _tier_lines(outcome: Outcome) -> list[str]:
    lines = balances(outcome)
    for entry in outcome.entries:
        if entry.kind == "tier_unchanged":
            lines.append(f"  no change: {entry.details.get('reason', 'already in that tier')}")
    return lines


@app.command("change")
def change(
    tier: Annotated[str, typer.Option("--tier", "-t", help="The tier name.", show_default=False)],
    customer: CustomerOpt = None,
    email: EmailOpt = None,
    notify: NotifyOpt = None,
    entry_rewards: EntryRewardsOpt = None,
    internal_note: InternalNoteOpt = None,
    command_id: IdOpt = None,
    actor: ActorOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Put the customer in a tier now (a manual change: held for the membership period)."""
    publish(
        customer,
        email,
        lambda customer_id: client.change_tier(
            customer_id,
            tier,
            notify=notify,
            entry_rewards=entry_rewards,
            internal_note=internal_note,
            command_id=command_id,
            actor=actor,
        ),
        wait=wait,
        timeout=timeout,
        describe=_tier_lines,
    )


def _expiry(
    on: date | None,
    days: int | None,
    months: int | None,
    field: str | None,
    unit: Unit | None,
) -> dict[str, Any] | None:
    """Return the Expiry object the options describe (see docs/admin.md)."""
    length = {
        key: value for key, value in (("days", days), ("months", months)) if value is not None
    }
    if on is not None:
        if length or field or unit:
            raise typer.BadParameter("--expires-on takes no other expiry option")
        return {"kind": "fixed_date", "date": on.isoformat()}
    if field is not None:
        if unit is not None:
            if length:
                raise typer.BadParameter("--duration-unit reads the length from the field")
            return {"kind": "duration_from_field", "field": field, "unit": unit.value}
        return {"kind": "after_field_date", "field": field, **length}
    if unit is not None:
        raise typer.BadParameter("--duration-unit needs --expiry-field")
    if length:
        return {"kind": "duration", **length}
    return None


def _fields(pairs: list[str]) -> dict[str, Any]:
    """Parse ``key=value`` pairs; whole numbers, decimals and true/false keep their type."""
    fields: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--field")
        value: Any = raw
        if raw in {"true", "false"}:
            value = raw == "true"
        elif raw.lstrip("-").isdigit():
            value = int(raw)
        else:
            try:
                value = Decimal(raw) if any(ch.isdigit() for ch in raw) else raw
            except InvalidOperation:
                value = raw
        fields[key.strip()] = value
    return fields


@app.command("manage")
def manage(
    action: Annotated[Action, typer.Option("--action", "-a", show_default=False)],
    strategy: Annotated[
        Strategy,
        typer.Option(
            "--strategy",
            "-s",
            help="specific: the --tier given, bypassing eligibility; rules: the highest tier "
            "the customer qualifies for.",
        ),
    ] = Strategy.specific,
    tier: Annotated[str | None, typer.Option("--tier", "-t", help="The tier (specific).")] = None,
    customer: CustomerOpt = None,
    email: EmailOpt = None,
    group: Annotated[
        str | None, typer.Option("--group", "-g", help="Every member of this customer group.")
    ] = None,
    expires_on: Annotated[
        str | None, typer.Option("--expires-on", help="Fixed end date, YYYY-MM-DD.")
    ] = None,
    expiry_days: Annotated[int | None, typer.Option("--expiry-days", min=0)] = None,
    expiry_months: Annotated[int | None, typer.Option("--expiry-months", min=0)] = None,
    expiry_field: Annotated[
        str | None,
        typer.Option(
            "--expiry-field",
            help="Extended field holding a date (ends that long after it) or, with "
            "--duration-unit, a length.",
        ),
    ] = None,
    duration_unit: Annotated[Unit | None, typer.Option("--duration-unit")] = None,
    field: Annotated[
        list[str] | None, typer.Option("--field", help="Extended field key=value (repeatable).")
    ] = None,
    notify: NotifyOpt = None,
    entry_rewards: EntryRewardsOpt = None,
    internal_note: InternalNoteOpt = None,
    command_id: IdOpt = None,
    actor: ActorOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Upgrade, downgrade or renew a customer's tier, or every member of a group's."""
    try:
        on = date.fromisoformat(expires_on) if expires_on is not None else None
    except ValueError:
        raise typer.BadParameter("give a date like 2026-12-31", param_hint="--expires-on") from None
    options: dict[str, Any] = {
        "tier": tier,
        "expiry": _expiry(on, expiry_days, expiry_months, expiry_field, duration_unit),
        "notify": notify,
        "entry_rewards": entry_rewards,
        "extended_fields": _fields(field or []),
        "internal_note": internal_note,
        "command_id": command_id,
        "actor": actor,
    }
    if group is not None:
        if customer is not None or email is not None:
            raise typer.BadParameter("give --group or a customer (--customer/--email), not both")
        if wait:
            raise typer.BadParameter("--wait follows one customer; a group command fans out")
        try:
            command = client.manage_tier(action.value, strategy.value, group_id=group, **options)
        except MessageError as exc:
            raise fail(exc.message, 2) from None
        publish_unresolved(command)
        return
    publish(
        customer,
        email,
        lambda customer_id: client.manage_tier(
            action.value, strategy.value, customer_id=customer_id, **options
        ),
        wait=wait,
        timeout=timeout,
        describe=_tier_lines,
    )
