"""``loyalty bench soak``: steady mixed load for N minutes; lag, memory and outbox sampled."""

from __future__ import annotations

import asyncio
import os
import platform
import shlex
import sys
from dataclasses import replace
from typing import Annotated

import typer
from rich.table import Table

from cli.console import make_console
from cli.soak_report import (
    SoakReport,
    markdown,
    sample_rows,
    summary_lines,
    to_json,
    trend_rows,
)
from cli.soak_run import Options, Soak, SoakError
from models.program import ProgramError
from settings import SettingsError, get_settings
from stack.worker import WorkerError
from topics.admin import TopicLayoutError

console = make_console()
errors = make_console(stderr=True)

MEASURED_MAX = 334.0
"""The highest end-to-end rate measured on this machine, events/s."""
MEASURED_MAX_SOURCE = (
    "half of 334 events/s, the end-to-end rate of `loyalty bench pipeline` in "
    "docs/BENCHMARKS.md (pipeline, default size on a quiet machine)"
)


def _machine() -> str:
    return (
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{platform.machine()}, {platform.system()} {platform.release()}"
    )


def _print(report: SoakReport) -> None:
    header, rows = sample_rows(report)
    table = Table(*header, title="soak: one row per sample")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for title, trends, digits in (
        ("memory (RSS MB; slopes in MB/min)", report.memory, 0),
        ("consumer lag (messages; slopes in messages/min)", report.lag, 0),
    ):
        trend_table = Table("name", "first", "last", "slope", "second half", "verdict", title=title)
        for row in trend_rows(trends, digits):
            trend_table.add_row(*row)
        console.print(trend_table)
    for line in summary_lines(report):
        console.print(f"- {line}")


def soak(
    *,
    minutes: Annotated[float, typer.Option(min=0.05, help="How long the load runs.")] = 30.0,
    rate: Annotated[
        float | None,
        typer.Option(min=1.0, help="Messages/s [default: half the measured maximum, 167]."),
    ] = None,
    sample_seconds: Annotated[float, typer.Option(min=1.0, help="Seconds between samples.")] = 60.0,
    warmup_minutes: Annotated[
        float, typer.Option(min=0.0, help="Samples before this are left out of the slopes.")
    ] = 5.0,
    active_customers: Annotated[
        int, typer.Option(min=10, help="Customers receiving messages at any one time.")
    ] = 500,
    drain_seconds: Annotated[
        float, typer.Option(min=5.0, help="Longest wait for the lag to drain at the end.")
    ] = 600.0,
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate",
            help="Measure the maximum rate of this load first (drain a backlog); soak at half.",
        ),
    ] = False,
    calibrate_messages: Annotated[
        int, typer.Option(min=1000, help="Messages pre-loaded for --calibrate.")
    ] = 20_000,
    markdown_out: Annotated[
        bool, typer.Option("--markdown", help="Print the section for docs/BENCHMARKS.md.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    keep: Annotated[
        bool, typer.Option(help="Keep the run's topics, database and mail for inspection.")
    ] = False,
) -> None:
    """Run the worker and the consumers under steady mixed load; sample lag, RSS and outbox."""
    try:
        settings = get_settings()
        settings.code_key()
    except (SettingsError, ProgramError) as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    if calibrate and rate is not None:
        raise typer.BadParameter("--calibrate measures the rate; leave out --rate")
    options = Options(
        minutes=minutes,
        rate=rate if rate is not None else MEASURED_MAX / 2,
        rate_source="set with --rate" if rate is not None else MEASURED_MAX_SOURCE,
        sample_seconds=sample_seconds,
        warmup_minutes=min(warmup_minutes, minutes),
        active_customers=active_customers,
        drain_seconds=drain_seconds,
        keep=keep,
    )
    machine = _machine() + f", load average {os.getloadavg()[0]:.1f} at the start"
    command = "loyalty " + shlex.join(sys.argv[1:])

    def progress(text: str) -> None:
        errors.print(f"... {text}", highlight=False)

    try:
        if calibrate:
            calibration = Soak(settings, options, command, machine, progress)
            measured = asyncio.run(calibration.calibrate(calibrate_messages))
            options = replace(
                options,
                rate=measured / 2,
                rate_source=(
                    f"half of {measured:.0f} messages/s, measured by --calibrate just before: "
                    f"the worker draining {calibrate_messages} messages of the same load"
                ),
            )
        runner = Soak(settings, options, command, machine, progress)
        report = asyncio.run(runner.run())
    except (SoakError, WorkerError, TopicLayoutError) as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    if json_out:
        print(to_json(report))
    elif markdown_out:
        print(markdown(report), end="")
    else:
        _print(report)
    if report.drain_seconds is None or not all(report.stopped.values()):
        raise typer.Exit(1)  # the numbers are printed; a run that did not finish cleanly fails
