"""``loyalty bench pipeline``: the worker end to end, as a ratio to ceilings from the same run."""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
from typing import Annotated

import typer
from rich.table import Table

from cli.bench_e2e import Bench, Options, Report
from cli.console import make_console
from models.program import ProgramError
from program_file import load_program
from settings import SettingsError, get_settings
from stack.worker import WorkerError
from topics.admin import TopicLayoutError

console = make_console()
errors = make_console(stderr=True)

TARGET_SHARE = 0.70
"""End to end should reach this share of the slower ceiling."""
TARGET_HISTORY = 1.5
"""Customers with a long history should be at most this many times slower."""


def _machine() -> str:
    load = os.getloadavg()[0]
    return (
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{platform.machine()}, load average {load:.1f} at the start"
    )


def _print(report: Report) -> None:
    opts = report.options
    ceilings = Table("measured", "rate", "note", title="pipeline: ceilings and end to end")
    ceilings.add_row("produce (pre-load)", f"{report.produce_rate:,.0f}/s", "aiokafka, acks=all")
    ceilings.add_row("raw consume", f"{report.consume_raw:,.0f}/s", "aiokafka getmany")
    ceilings.add_row(
        "consume + parse", f"{report.consume_parsed:,.0f}/s", "into the pydantic envelope"
    )
    store = report.store
    if store is not None:
        ceilings.add_row(
            "store round trips",
            f"{store.events_per_second:,.0f} events/s",
            f"{store.events} events in {store.batches} batches, rules excluded",
        )
    ceilings.add_row(
        "end to end",
        f"{report.end_to_end:,.0f} events/s",
        f"{report.end_to_end / report.ceiling:.0%} of the slower ceiling "
        f"({report.ceiling:,.0f}/s); target {TARGET_SHARE:.0%}",
    )
    console.print(ceilings)
    if store is not None:
        calls = Table("repository call", "seconds", "share", title="store time per call")
        for name, seconds in sorted(store.calls.items(), key=lambda kv: -kv[1]):
            calls.add_row(name, f"{seconds:.2f}", f"{seconds / store.seconds:.0%}")
        console.print(calls)
        trips = Table("round trip", "count", "docs", "server s", "docs/s", title="round trips")
        for label, trip in sorted(store.trips.items(), key=lambda kv: -kv[1].seconds):
            trips.add_row(
                label,
                str(trip.count),
                str(trip.docs),
                f"{trip.seconds:.2f}",
                f"{trip.docs_per_second:,.0f}",
            )
        console.print(trips)
    cpu = ", ".join(f"{name} {share:.0%}" for name, share in report.cpu.items())
    console.print(
        f"end to end: {opts.events} events in {report.end_to_end_seconds:.1f} s "
        f"(worker start included); CPU used from 10% of the events to the end, as a share of "
        f"one core: {cpu}"
    )
    console.print(
        f"latency produce -> tier.changed at {report.latency_rate:.0f} events/s "
        f"({len(report.latencies)} orders): p50 {report.percentile(0.5) * 1000:.0f} ms, "
        f"p99 {report.percentile(0.99) * 1000:.0f} ms"
    )
    fresh = report.history.get("0", [])
    long = report.history.get(str(opts.history_orders), [])
    if fresh and long:
        console.print(history_table(report))
        ratios = [f / lo for f, lo in zip(fresh, long, strict=True)]
        console.print(
            f"history: {opts.history_customers} customers x {opts.history_events} events per "
            f"group and round; median ratio {statistics.median(ratios):.2f}x over "
            f"{len(ratios)} rounds (target <= {TARGET_HISTORY}x); round 1 is the first the "
            "worker sees these customers in"
        )
    if report.worker_log is not None:
        console.print(f"worker log: {report.worker_log}")


def history_table(report: Report) -> Table:
    """One row per history round: both groups' rates, their ratio and the machine's load."""
    opts = report.options
    fresh = report.history["0"]
    long = report.history[str(opts.history_orders)]
    table = Table(
        "round",
        "0 prior orders",
        f"{opts.history_orders:,} prior orders",
        "ratio",
        "load average",
        title="history: events/s per group, interleaved rounds",
    )
    loads = report.history_load or [float("nan")] * len(fresh)
    for n, (f, lo, load) in enumerate(zip(fresh, long, loads, strict=True), start=1):
        table.add_row(str(n), f"{f:,.0f}", f"{lo:,.0f}", f"{f / lo:.2f}x", f"{load:.1f}")
    return table


def pipeline(
    *,
    events: Annotated[int, typer.Option(min=1000, help="Order events pre-loaded.")] = 100_000,
    customers: Annotated[int, typer.Option(min=10, help="Customers they spread over.")] = 10_000,
    store_events: Annotated[
        int, typer.Option(min=500, help="Events replayed for the store ceiling.")
    ] = 10_000,
    probes: Annotated[int, typer.Option(min=10, help="Orders timed for the latency.")] = 1_000,
    history_customers: Annotated[
        int, typer.Option(min=10, help="Customers per history group.")
    ] = 100,
    history_orders: Annotated[
        int, typer.Option(min=1, help="Prior orders of the long-history group.")
    ] = 1_000,
    history_events: Annotated[
        int, typer.Option(min=1, help="Events per history customer, per measurement.")
    ] = 20,
    history_rounds: Annotated[
        int, typer.Option(min=1, help="Interleaved rounds of the history phase.")
    ] = 5,
    keep: Annotated[
        bool, typer.Option(help="Keep the run's topics and databases for inspection.")
    ] = False,
) -> None:
    """Run the worker on a pre-loaded topic; report its rate against the measured ceilings."""
    try:
        settings = get_settings()
        program = load_program(settings.program_file)
        settings.code_key()
    except (SettingsError, ProgramError) as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    options = Options(
        events=events,
        customers=customers,
        store_events=min(store_events, events),
        probes=probes,
        history_customers=history_customers,
        history_orders=history_orders,
        history_events=history_events,
        history_rounds=history_rounds,
        keep=keep,
    )
    console.print(f"machine: {_machine()}")
    bench = Bench(settings, program, options, progress=lambda text: errors.print(f"... {text}"))
    try:
        report = asyncio.run(bench.run_all())
    except (WorkerError, TopicLayoutError, TimeoutError) as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    _print(report)
