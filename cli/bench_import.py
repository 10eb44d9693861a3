"""``loyalty bench import``: a large tiers import per stage, as ratios to raw ceilings."""

from __future__ import annotations

import asyncio
import platform
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from admin.benchmark import BenchPlan, BenchResult, run_bench
from cli.console import make_console
from settings import SettingsError, load_settings

console = make_console()


def _print_import(result: BenchResult) -> None:
    plan, report = result.plan, result.report
    console.print(
        f"machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}",
        highlight=False,
    )
    console.print(
        f"file: {plan.rows} rows ({result.file_bytes / 1e6:.1f} MB): {plan.customers} customers' "
        f"emails once each, {plan.unknown} unknown emails, {plan.invalid} unknown tiers, "
        f"{plan.repeats} repeated emails; {plan.customers} customers seeded in "
        f"{result.seed_seconds:.1f} s",
        highlight=False,
    )
    console.print(
        f"import: {report['published']} published, {report['rejected']} rejected in "
        f"{result.wall_seconds:.1f} s ({plan.rows / result.wall_seconds:.0f} rows/s end to end, "
        f"process start included); peak RSS {result.peak_rss_mb:.0f} MB",
        highlight=False,
    )
    console.print(
        "stage             items    busy s    rate/s   ceiling/s   ratio", highlight=False
    )
    for stage in result.stages:
        console.print(
            f"{stage.name:<16} {stage.items:>8} {stage.seconds:>8.1f} {stage.rate:>9.0f} "
            f"{stage.ceiling:>11.0f} {stage.ratio:>7.0%}",
            highlight=False,
        )


def bench_import(
    rows: Annotated[
        int, typer.Option(help="Rows of the generated tiers CSV.", min=1000)
    ] = 1_000_000,
    customers: Annotated[
        int, typer.Option(help="Customers seeded into the store.", min=100)
    ] = 100_000,
    unknown: Annotated[
        int, typer.Option(help="Rows with emails no customer has.", min=0)
    ] = 200_000,
    sample: Annotated[
        int, typer.Option(help="Lookups and messages the raw ceilings are measured on.", min=100)
    ] = 100_000,
) -> None:
    """Time a large tiers import per stage (parse, lookup, publish) against raw ceilings."""
    invalid = rows // 100
    if customers + unknown + invalid > rows:
        raise typer.BadParameter(
            "rows must cover the customers, the unknown emails and 1% bad tiers"
        )
    plan = BenchPlan(
        rows=rows, customers=customers, unknown=unknown, invalid=invalid, sample=sample
    )
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise typer.BadParameter(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="loyalty-bench-") as folder:
        result = asyncio.run(
            run_bench(
                settings, plan, Path(folder), lambda line: console.print(line, highlight=False)
            )
        )
    _print_import(result)
