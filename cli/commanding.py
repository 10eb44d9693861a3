"""What the admin command groups share: the customer options, publishing and ``--wait``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Annotated

import typer
from aiokafka.errors import KafkaError
from pymongo.errors import PyMongoError

from admin.client import AdminClient, Command
from admin.connections import AdminSession, admin_session
from admin.outcome import NotAppliedError, Outcome, wait_for
from cli.console import make_console
from models.state import ActivityEntry
from settings import Settings, SettingsError, load_settings
from topics.admin import TopicLayoutError
from topics.codec import MessageError

console = make_console()
errors = make_console(stderr=True)

CustomerOpt = Annotated[
    str | None, typer.Option("--customer", "-c", help="The customer's id.", show_default=False)
]
EmailOpt = Annotated[
    str | None,
    typer.Option(
        "--email", "-e", help="The customer's email (any letter case).", show_default=False
    ),
]
IdOpt = Annotated[
    str | None,
    typer.Option(
        "--id",
        help="The command id (default: a fresh one). Sending the same id again changes nothing.",
        show_default=False,
    ),
]
ActorOpt = Annotated[
    str | None, typer.Option("--actor", help="Who issues the command (shown in the activity).")
]
InternalNoteOpt = Annotated[
    str | None, typer.Option("--internal-note", help="A note for staff only.")
]
WaitOpt = Annotated[
    bool,
    typer.Option(
        "--wait", help="Wait until the worker applied it; print the result or why it was refused."
    ),
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", help="Seconds --wait waits for the worker.", min=1)
]

EXIT_REFUSED = 3
EXIT_NOT_APPLIED = 4


def quiet_kafka_retries() -> None:
    """Keep aiokafka's retry warnings (a new topic's leader election) off the user's screen."""
    logging.getLogger("aiokafka").setLevel(logging.ERROR)


def plural(count: int, noun: str) -> str:
    """Return ``1 row`` or ``2 rows``."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error on stderr and return the exit to raise."""
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def one_customer(customer: str | None, email: str | None) -> None:
    """Refuse (as a usage error) anything but exactly one of --customer and --email."""
    if (customer is None) == (email is None):
        raise typer.BadParameter("give the customer with exactly one of --customer and --email")


async def resolve(session: AdminSession, customer: str | None, email: str | None) -> str:
    """Return the customer id given directly or found by email; unknown ones are an error."""
    repository = session.repository
    if email is not None:
        found = await repository.customer_id_by_email(email)
        if found is None:
            raise fail(
                f"no customer has the email {email!r} (emails are compared ignoring letter "
                "case); check it, or find the customer with `loyalty customer list --email "
                "<part of the email>`"
            )
        return found
    assert customer is not None
    if await repository.get(customer) is None:
        raise fail(
            f"no customer {customer!r} in the program; check the id, or address the customer "
            "with --email"
        )
    return customer


Build = Callable[[str], Command]
"""Builds the command once the customer id is known."""
Describe = Callable[[Outcome], list[str]]
"""Describes what an applied command did."""


def publish(
    customer: str | None,
    email: str | None,
    build: Build,
    *,
    wait: bool,
    timeout: float,
    describe: Describe,
) -> None:
    """Resolve the customer, publish the command, and with ``wait`` report what it did."""
    one_customer(customer, email)
    quiet_kafka_retries()
    try:
        settings = load_settings()
        outcome = asyncio.run(_publish(settings, customer, email, build, wait, timeout))
    except SettingsError as exc:
        raise fail(str(exc)) from None
    except MessageError as exc:
        raise fail(exc.message, 2) from None
    except (KafkaError, TopicLayoutError) as exc:
        raise fail(f"could not publish to Kafka: {exc}") from None
    except PyMongoError as exc:
        raise fail(f"the store did not answer: {exc}") from None
    except NotAppliedError as exc:
        raise fail(str(exc), EXIT_NOT_APPLIED) from None
    if outcome is not None:
        report(outcome, describe)


async def _publish(
    settings: Settings,
    customer: str | None,
    email: str | None,
    build: Build,
    wait: bool,
    within: float,
) -> Outcome | None:
    async with admin_session(settings, publish=True) as session:
        customer_id = await resolve(session, customer, email)
        command = build(customer_id)
        assert session.producer is not None
        await AdminClient(session.producer, topics=session.topics).publish(command)
        console.print(f"published {command.type} {command.id} for {customer_id}", highlight=False)
        if not wait:
            return None
        return await wait_for(session.repository, command, within=within)


def report(outcome: Outcome, describe: Describe) -> None:
    """Print what the command did; exit with EXIT_REFUSED when it was refused."""
    refusal = outcome.refusal
    if refusal is not None:
        reason = refusal.details.get("reason", "refused")
        raise fail(f"refused ({refusal.details.get('code', 'refused')}): {reason}", EXIT_REFUSED)
    for line in describe(outcome):
        console.print(line, highlight=False)


def balances(outcome: Outcome) -> list[str]:
    """Describe balances and tier after a command."""
    state = outcome.state
    expires = f", until {state.tier_expires_at.date().isoformat()}" if state.tier_expires_at else ""
    lines = [
        f"applied: points balance {state.points_balance}, stamps balance "
        f"{state.stamps_balance}, tier {state.tier or '-'}{expires}"
    ]
    lines += [entry_line(entry) for entry in outcome.entries]
    return lines


def entry_line(entry: ActivityEntry) -> str:
    """Describe one activity entry the command produced."""
    details = entry.details
    parts = [entry.kind]
    if entry.delta is not None:
        parts.append(f"{entry.delta:+d}")
    if entry.kind == "tier_changed":
        parts.append(f"{details.get('from_tier') or '-'} -> {details.get('to_tier')}")
        granted = details.get("entry_rewards_granted") or []
        if granted:
            # Grant ids end with the reward id (models.rules.grants).
            parts.append("entry rewards " + ", ".join(str(g).rsplit(":", 1)[-1] for g in granted))
    if details.get("expires_at"):
        parts.append(f"expires {str(details['expires_at'])[:10]}")
    return "  " + " ".join(parts)


def publish_unresolved(command: Command) -> None:
    """Publish a command whose key needs no lookup (a group command)."""
    quiet_kafka_retries()
    try:
        settings = load_settings()
        asyncio.run(_publish_plain(settings, command))
    except SettingsError as exc:
        raise fail(str(exc)) from None
    except (KafkaError, TopicLayoutError) as exc:
        raise fail(f"could not publish to Kafka: {exc}") from None
    console.print(f"published {command.type} {command.id} for {command.customer_id}")


async def _publish_plain(settings: Settings, command: Command) -> None:
    async with admin_session(settings, publish=True) as session:
        assert session.producer is not None
        await AdminClient(session.producer, topics=session.topics).publish(command)
