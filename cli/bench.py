"""``loyalty bench ...``: measurements of the engine, one subcommand per part measured.

Each subcommand reports numbers (never asserts them) with the ceiling it compares to; the
results and how they were taken are written into docs/BENCHMARKS.md.
"""

from __future__ import annotations

import cProfile
import os
import platform
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.bench_decide import measure, prepare, profile_text, time_once
from cli.console import make_console
from models.program import Program, ProgramError
from program_file import load_program
from settings import SettingsError, get_settings

app = typer.Typer(help="Measure the engine: rules, pipeline, imports.", no_args_is_help=True)
console = make_console()
errors = make_console(stderr=True)


@app.callback()
def _group() -> None:
    """Measure the engine: rules, pipeline, imports."""


def _program(file: Path | None) -> Program:
    try:
        path = file if file is not None else get_settings().program_file
        return load_program(path)
    except (ProgramError, SettingsError) as exc:
        errors.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from None


def _history_lengths(text: str) -> list[int]:
    try:
        lengths = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: give whole numbers separated by commas, like 0,100,1000"
        ) from None
    if not lengths or any(n < 0 for n in lengths):
        raise typer.BadParameter(f"{text!r}: give one or more numbers >= 0, like 0,100,1000")
    return lengths


def machine() -> str:
    """One line about where the numbers were taken."""
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{python}, {os.cpu_count()} CPUs, {platform.machine()}, {platform.platform()}"


@app.command("decide")
def decide_command(
    orders: Annotated[
        str, typer.Option(help="Prior orders per customer to measure, comma separated.")
    ] = "0,100,1000,10000",
    events: Annotated[
        int, typer.Option(min=1, help="Events decided and timed per customer.")
    ] = 2000,
    repeats: Annotated[
        int, typer.Option(min=1, help="Runs per customer, interleaved; the fastest counts.")
    ] = 5,
    hot_orders: Annotated[
        int,
        typer.Option(min=1, help="Order records handed to the rules (the store's hot orders)."),
    ] = 100,
    program_file: Annotated[
        Path | None,
        typer.Option("--program", help="Program file (default: LOYALTY_PROGRAM_FILE)."),
    ] = None,
    profile: Annotated[
        bool, typer.Option(help="Profile the longest history and print where the time goes.")
    ] = False,
) -> None:
    """Time decide() for customers with short and long histories; report events/s and size."""
    lengths = _history_lengths(orders)
    program = _program(program_file)
    console.print(
        f"machine: {machine()}; {events} events per customer, best of {repeats} runs, "
        f"{hot_orders} hot orders"
    )
    customers = []
    for length in lengths:
        with console.status(f"building a customer with {length:,} orders ..."):
            customers.append(prepare(program, length, events, hot_orders))
    with console.status("timing ..."):
        results = measure(program, customers, repeats)
    ceiling = results[0].per_second
    table = Table(
        "prior orders",
        "events/s",
        f"vs {results[0].prior_orders} orders",
        "state bytes",
        "lots",
        "grants",
        "period buckets",
        "order records",
        title="loyalty bench decide",
    )
    for result in results:
        table.add_row(
            f"{result.prior_orders:,}",
            f"{result.per_second:,.0f}",
            f"{result.per_second / ceiling:.2f}",
            f"{result.state_bytes:,}",
            str(result.lots),
            str(result.grants),
            str(result.buckets),
            str(result.hot_orders),
        )
    console.print(table)
    longest = max(results, key=lambda r: r.prior_orders)
    ratio = longest.per_second / ceiling
    verdict = "meets" if ratio >= 0.5 else "misses"
    console.print(
        f"{longest.prior_orders:,} prior orders run at {ratio:.2f} of the "
        f"{results[0].prior_orders}-order rate ({verdict} the target of at least 0.50)"
    )
    if profile:
        profiler = cProfile.Profile()
        time_once(program, max(customers, key=lambda c: c.orders), profiler)
        console.print(profile_text(profiler), markup=False, highlight=False)
