"""``loyalty demo``: play the scripted scenario against the local stack and print what happened."""

from __future__ import annotations

import asyncio
import email
from email import policy

import typer
from rich.table import Table

from cli.console import make_console
from demo.runner import DemoResult, play
from models.outputs import NotificationRequested, RewardGranted, TierChanged
from models.program import ProgramError, load_program
from settings import SettingsError, get_settings

console = make_console()


def _activity_line(kind: str, delta: int | None, details: dict[str, object]) -> str:
    parts = [kind] + ([f"{delta:+d}"] if delta is not None else [])
    parts += [f"{key}={value}" for key, value in details.items() if value not in (None, [], {})]
    return " ".join(parts)


def _print_steps(result: DemoResult) -> None:
    for number, step_result in enumerate(result.steps, start=1):
        console.rule(f"step {number}: {step_result.step.title}")
        for note in step_result.step.notes:
            console.print(f"  [yellow]import report[/yellow] {note}")
        for message_id, decision in step_result.decisions:
            if decision.rejection is not None:
                console.print(f"  [red]refused[/red] {message_id}: {decision.rejection.reason}")
            for entry in decision.activity:
                line = _activity_line(entry.kind, entry.delta, entry.details)
                console.print(f"  {entry.cause.type} {entry.cause.id} -> {line}")
        for error in step_result.errors:
            console.print(f"  [red]invalid[/red] {error}")


def _print_customers(result: DemoResult) -> None:
    table = Table(
        "customer",
        "points",
        "earned",
        "stamps",
        "tier",
        "expires",
        "rewards",
        title="customers after the scenario",
    )
    for state in result.states.values():
        rewards = ", ".join(f"{g.reward_id} ({g.status})" for g in state.rewards) or "-"
        expires = state.tier_expires_at.date().isoformat() if state.tier_expires_at else "-"
        table.add_row(
            state.customer_id,
            str(state.points_balance),
            str(state.points_earned),
            str(state.stamps_balance),
            state.tier or "-",
            expires,
            rewards,
        )
    console.print(table)


def _print_outputs(result: DemoResult) -> None:
    changes = [out for out in result.outputs if isinstance(out, TierChanged)]
    table = Table(
        "customer",
        "from",
        "to",
        "direction",
        "cause",
        "notified",
        "entry rewards",
        title="tier.changed messages (loyalty.tier-changes)",
    )
    for change in changes:
        data = change.data
        table.add_row(
            change.customer_id,
            data.from_tier or "-",
            data.to_tier or "-",
            data.direction,
            f"{data.cause.type} {data.cause.id}",
            str(data.notified),
            ", ".join(data.entry_rewards_granted) or "-",
        )
    console.print(table)
    grants = [out for out in result.outputs if isinstance(out, RewardGranted)]
    console.print(
        f"reward.granted messages: {len(grants)} "
        f"({', '.join(g.data.reward_id for g in grants) or 'none'})"
    )
    for note in (out for out in result.outputs if isinstance(out, NotificationRequested)):
        console.print(f"email requested: {note.data.kind} for {note.customer_id}")


def _print_mail(result: DemoResult) -> None:
    console.print(f"emails received by the SMTP sink during the demo: {len(result.mail_files)}")
    for path in result.mail_files:
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        console.print(f"  to {message['To']}: {message['Subject']}")
    if not result.mail_files:
        console.print("  (the email notifier that sends the requested emails is not built yet)")


def demo() -> None:
    """Play the scripted scenario on the local stack and print balances, tiers and messages."""
    try:
        settings = get_settings()
        program = load_program(settings.program_file)
        settings.code_key()  # fail here, before publishing anything, when there is no key
    except (SettingsError, ProgramError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(
        f"program {program.version} ({settings.program_file}); Kafka {settings.kafka_bootstrap}\n"
        "The stream workers and the MongoDB store are not built yet: the demo publishes each "
        "step to the input topics, reads it back from Kafka and applies the domain rules "
        "in-process."
    )
    result = asyncio.run(play(settings, program))
    _print_steps(result)
    _print_customers(result)
    _print_outputs(result)
    _print_mail(result)
