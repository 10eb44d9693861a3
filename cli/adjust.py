"""``loyalty adjust points|stamps``: add or remove points or stamps by hand."""

from __future__ import annotations

from typing import Annotated

import typer

from admin import client
from cli.commanding import (
    ActorOpt,
    CustomerOpt,
    EmailOpt,
    IdOpt,
    InternalNoteOpt,
    TimeoutOpt,
    WaitOpt,
    balances,
    publish,
)

app = typer.Typer(help="Add or remove points or stamps by hand.", no_args_is_help=True)

DeltaOpt = Annotated[
    int,
    typer.Option(
        "--delta", "-d", help="How many to add (positive) or remove (negative).", show_default=False
    ),
]
CustomerNoteOpt = Annotated[
    str | None, typer.Option("--customer-note", help="A note the customer sees.")
]


@app.callback()
def _group() -> None:
    """Add or remove points or stamps by hand."""


@app.command("points")
def points(
    delta: DeltaOpt,
    customer: CustomerOpt = None,
    email: EmailOpt = None,
    internal_note: InternalNoteOpt = None,
    customer_note: CustomerNoteOpt = None,
    expires_in_months: Annotated[
        int | None,
        typer.Option("--expires-in-months", help="Added points expire after this many months."),
    ] = None,
    command_id: IdOpt = None,
    actor: ActorOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Adjust a customer's points (sends no email; crossing a threshold can change the tier)."""
    publish(
        customer,
        email,
        lambda customer_id: client.adjust_points(
            customer_id,
            delta,
            internal_note=internal_note,
            customer_note=customer_note,
            expires_in_months=expires_in_months,
            command_id=command_id,
            actor=actor,
        ),
        wait=wait,
        timeout=timeout,
        describe=balances,
    )


@app.command("stamps")
def stamps(
    delta: DeltaOpt,
    customer: CustomerOpt = None,
    email: EmailOpt = None,
    internal_note: InternalNoteOpt = None,
    customer_note: CustomerNoteOpt = None,
    command_id: IdOpt = None,
    actor: ActorOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Adjust a customer's stamps (never below zero; a full card grants the card reward)."""
    publish(
        customer,
        email,
        lambda customer_id: client.adjust_stamps(
            customer_id,
            delta,
            internal_note=internal_note,
            customer_note=customer_note,
            command_id=command_id,
            actor=actor,
        ),
        wait=wait,
        timeout=timeout,
        describe=balances,
    )
