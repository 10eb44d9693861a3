"""``loyalty program show``: the program in force, as tables or as the contract's JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.console import make_console
from models.program import Program, ProgramError
from models.program_view import program_contract_view
from models.values import format_decimal
from program_file import load_program
from settings import SettingsError, get_settings

app = typer.Typer(help="Inspect the loyalty program configuration.", no_args_is_help=True)
console = make_console()
errors = make_console(stderr=True)


@app.callback()
def _group() -> None:
    """Inspect the loyalty program configuration."""


def _load(file: Path | None) -> Program:
    try:
        path = file if file is not None else get_settings().program_file
        return load_program(path)
    except (ProgramError, SettingsError) as exc:
        errors.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from None


def _tables(program: Program) -> list[Table]:
    tiers = Table("rank", "tier", "metric", "threshold", "multiplier", "entry rewards", "benefits")
    for tier in program.tiers:
        tiers.add_row(
            str(tier.rank),
            tier.name,
            tier.metric,
            format_decimal(tier.threshold),
            format_decimal(tier.points_multiplier),
            ", ".join(tier.entry_rewards) or "-",
            ", ".join(tier.benefits) or "-",
        )
    rewards = Table("reward", "name", "cost")
    for reward in program.rewards:
        if reward.cost_points is not None:
            cost = f"{reward.cost_points} points"
        elif reward.cost_stamps is not None:
            cost = f"{reward.cost_stamps} stamps"
        elif (rate := reward.points_rate) is not None:
            cost = (
                f"{rate.points} points = {format_decimal(rate.amount)} {program.currency} off, "
                f"{rate.lowest}-{rate.max_points if rate.max_points is not None else 'any'}"
            )
        else:
            cost = "not for sale"
        rewards.add_row(reward.reward_id, reward.name, cost)
    return [tiers, rewards]


def _summary(program: Program) -> list[str]:
    earn = program.earn
    lines = [
        f"[bold]{program.name}[/bold]  version {program.version}  currency {program.currency}",
        f"points: {format_decimal(earn.points_per_currency_unit)} per {program.currency}, "
        f"rounded {earn.rounding} per order"
        + (
            f", expire after {earn.points_expire_after_months} months"
            if earn.points_expire_after_months
            else ""
        ),
    ]
    period = program.qualification_period
    lines.append(
        "qualification: "
        + (f"rolling {period.months} months" if period.months else period.kind.replace("_", " "))
        + (
            f"; membership period {program.membership_period.months} months"
            if program.membership_period
            else ""
        )
    )
    if program.stamps is not None:
        stamps = program.stamps
        per = (
            f"{stamps.stamps_per_order} per order"
            if stamps.mode == "per_order"
            else f"{stamps.stamps_per_item} per qualifying item"
        )
        card = (
            f", card of {stamps.card_size} gives {stamps.card_reward}" if stamps.card_size else ""
        )
        lines.append(f"stamps: {per}{card}")
    emails = [name for name, on in program.emails.model_dump().items() if on]
    lines.append("emails: " + (", ".join(emails) or "none"))
    return lines


@app.command()
def show(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the contract's JSON instead of tables.")
    ] = False,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Program file (default: LOYALTY_PROGRAM_FILE setting)."),
    ] = None,
) -> None:
    """Print the program in force: tiers in ascending rank, rewards and earn rules."""
    program = _load(file)
    if as_json:
        typer.echo(json.dumps(program_contract_view(program), indent=2))
        return
    for line in _summary(program):
        console.print(line, highlight=False)
    for table in _tables(program):
        console.print(table)
