"""``loyalty demo``: play the scripted scenario through a real worker and print what it stored."""

from __future__ import annotations

import asyncio
import email
from email import policy
from typing import Any

import typer
from rich.table import Table

from cli.console import make_console
from demo.readback import ReadBackError
from demo.runner import DemoResult, play
from models.program import ProgramError
from program_file import load_program
from settings import SettingsError, get_settings
from stack.worker import WorkerError
from topics.admin import TopicLayoutError

console = make_console()
errors = make_console(stderr=True)


def _activity_line(entry: dict[str, Any]) -> str:
    parts = [str(entry["kind"])]
    if entry.get("delta") is not None:
        parts.append(f"{entry['delta']:+d}")
    for note in ("customer_note", "internal_note"):
        if entry.get(note):
            parts.append(f"{note}={entry[note]!r}")
    details = entry.get("details") or {}
    parts += [f"{key}={value}" for key, value in details.items() if value not in (None, [], {})]
    return " ".join(parts)


def _print_steps(result: DemoResult) -> None:
    for number, step_result in enumerate(result.steps, start=1):
        console.rule(f"step {number}: {step_result.step.title}")
        for note in step_result.step.notes:
            console.print(f"  [yellow]import report[/yellow] {note}")
        for customer_id, entry in step_result.activity:
            cause = entry["cause"]
            line = _activity_line(entry)
            if entry["kind"] == "rejected":
                line = f"[red]{line}[/red]"
            console.print(f"  {customer_id} {cause['type']} {cause['id']} -> {line}")


def _print_customers(result: DemoResult) -> None:
    table = Table(
        "customer",
        "points",
        "earned",
        "stamps",
        "spend",
        "tier",
        "expires",
        "rewards (code, status)",
        title="customers read back from MongoDB (GET /customers/<id> on the worker)",
    )
    for view in result.views.values():
        rewards = "\n".join(
            f"{r['reward_id']} {r.get('code') or '-'} ({r['status']})" for r in view["rewards"]
        )
        expires = (view.get("tier_expires_at") or "-")[:10]
        table.add_row(
            view["customer_id"],
            str(view["points_balance"]),
            str(view.get("points_earned", "-")),
            str(view["stamps_balance"]),
            str(view["lifetime_spend"]),
            view.get("tier") or "-",
            expires,
            rewards or "-",
        )
    console.print(table)


def _print_activity(result: DemoResult) -> None:
    for view in result.views.values():
        console.rule(f"activity of {view['customer_id']} (newest first)")
        for entry in view["activity"]:
            console.print(f"  {entry['at'][:19]} {_activity_line(entry)}")


def _print_outputs(result: DemoResult) -> None:
    table = Table(
        "customer",
        "from",
        "to",
        "direction",
        "cause",
        "notified",
        "entry rewards",
        title="tier.changed messages read from loyalty.tier-changes",
    )
    for change in result.outputs_of("tier.changed"):
        data = change["data"]
        table.add_row(
            change["customer_id"],
            data.get("from_tier") or "-",
            data.get("to_tier") or "-",
            data["direction"],
            f"{data['cause']['type']} {data['cause']['id']}",
            str(data["notified"]),
            ", ".join(data.get("entry_rewards_granted") or []) or "-",
        )
    console.print(table)
    grants = result.outputs_of("reward.granted")
    listed = ", ".join(f"{g['data']['reward_id']} code {g['data'].get('code')}" for g in grants)
    console.print(f"reward.granted messages on loyalty.rewards: {len(grants)} ({listed or 'none'})")
    requests = result.outputs_of("notification.requested")
    console.print(f"notification requests on loyalty.notifications: {len(requests)}")
    for note in requests:
        console.print(f"  {note['data']['kind']} for {note['customer_id']}")


def _print_mail(result: DemoResult) -> None:
    codes = [g["data"].get("code") for g in result.outputs_of("reward.granted")]
    table = Table("to", "subject", "reward code", title="emails read back from the SMTP sink")
    for path in result.mail_files:
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        found = [code for code in codes if code and code in text]
        table.add_row(str(message["To"]), str(message["Subject"]), ", ".join(found) or "-")
    console.print(table)
    if not result.mail_files:
        console.print(f"  no email arrived; the consumers' log: {result.consumers_log}")


def demo() -> None:
    """Start a worker and the consumers, play the scenario, print what MongoDB and SMTP hold."""
    try:
        settings = get_settings()
        program = load_program(settings.program_file)
        settings.code_key()  # fail here, before publishing anything, when there is no key
    except (SettingsError, ProgramError) as exc:
        errors.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    console.print(
        f"program {program.version} ({settings.program_file}); Kafka {settings.kafka_bootstrap}; "
        f"MongoDB database {settings.mongo_database!r}\n"
        "The demo starts `loyalty worker` and `loyalty consumers` as separate processes, "
        "publishes each step to the input topics, waits until the worker has applied it, reads "
        "the customers back through the worker's read interface and the emails from the SMTP "
        "sink."
    )
    try:
        result = asyncio.run(play(settings, program))
    except (WorkerError, ReadBackError, TopicLayoutError) as exc:
        errors.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    _print_steps(result)
    _print_customers(result)
    _print_activity(result)
    _print_outputs(result)
    _print_mail(result)
    console.print(f"worker stopped; its log: {result.worker_log}")
    console.print(f"consumers stopped; their log: {result.consumers_log}")
