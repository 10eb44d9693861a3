"""``loyalty reward redeem|revoke``: spend a balance on a catalog reward, take one back.

The commands join the ``reward`` group of ``cli.reward`` (see ``cli.main``).
"""

from __future__ import annotations

from typing import Annotated

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
    publish,
)


def _grants(outcome: Outcome) -> list[str]:
    lines = balances(outcome)
    for entry in outcome.entries:
        grant = entry.details.get("grant_id")
        if grant is None:
            continue
        state_grant = outcome.state.grant(str(grant))
        code = getattr(state_grant, "code", None) if state_grant is not None else None
        status = state_grant.status if state_grant is not None else "-"
        lines.append(f"  grant {grant}" + (f" code {code}" if code else "") + f" ({status})")
    return lines


def redeem(
    reward_id: Annotated[
        str, typer.Option("--reward", "-r", help="The catalog reward id.", show_default=False)
    ],
    customer: CustomerOpt = None,
    email: EmailOpt = None,
    points: Annotated[
        int | None,
        typer.Option(
            "--points",
            "-p",
            min=1,
            help="Points to spend on a reward priced as a rate (a multiple of its step).",
            show_default=False,
        ),
    ] = None,
    internal_note: InternalNoteOpt = None,
    command_id: IdOpt = None,
    actor: ActorOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Spend points or stamps on a catalog reward (refused when the balance is short)."""
    publish(
        customer,
        email,
        lambda customer_id: client.redeem_reward(
            customer_id,
            reward_id,
            points=points,
            internal_note=internal_note,
            command_id=command_id,
            actor=actor,
        ),
        wait=wait,
        timeout=timeout,
        describe=_grants,
    )


def revoke(
    grant_id: Annotated[
        str, typer.Option("--grant", "-g", help="The grant id to revoke.", show_default=False)
    ],
    customer: CustomerOpt = None,
    email: EmailOpt = None,
    internal_note: InternalNoteOpt = None,
    command_id: IdOpt = None,
    actor: ActorOpt = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Take back an issued, unused reward (a used one is refused)."""
    publish(
        customer,
        email,
        lambda customer_id: client.revoke_reward(
            customer_id, grant_id, internal_note=internal_note, command_id=command_id, actor=actor
        ),
        wait=wait,
        timeout=timeout,
        describe=_grants,
    )
