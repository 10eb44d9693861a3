"""``loyalty stack up|down|status``: the local Kafka, MongoDB-compatible server and SMTP sink."""

from __future__ import annotations

import time

import typer
from rich.markup import escape
from rich.table import Table

from cli.console import make_console
from settings import SettingsError, load_settings
from stack import manager
from stack.process import ServiceStatus, StackError

app = typer.Typer(help="Run the local stack on 127.0.0.1 (no Docker needed).", no_args_is_help=True)
console = make_console()
errors = make_console(stderr=True)

EXIT_ERROR = 1
EXIT_UNHEALTHY = 3


def _table(rows: list[ServiceStatus]) -> Table:
    table = Table("service", "port", "pid", "health", "data dir", "detail")
    for row in rows:
        health = "[green]up[/green]" if row.healthy else "[red]down[/red]"
        table.add_row(
            row.name, str(row.port), str(row.pid or "-"), health, str(row.data_dir), row.detail
        )
    return table


def _fail(message: str) -> None:
    # soft_wrap: one clear line, whatever the terminal width.
    errors.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(EXIT_ERROR)


@app.command()
def up() -> None:
    """Install (cached under the stack dir) and start every service; wait until all answer."""
    started = time.monotonic()
    try:
        rows = manager.up(load_settings())
    except (StackError, SettingsError) as exc:
        _fail(str(exc))
        return
    console.print(_table(rows))
    console.print(f"stack up in {time.monotonic() - started:.1f}s")


@app.command()
def down() -> None:
    """Stop exactly the processes this stack started (by PID file)."""
    try:
        stopped = manager.down(load_settings())
    except (StackError, SettingsError) as exc:
        _fail(str(exc))
        return
    console.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@app.command()
def status() -> None:
    """Print each service, its port, PID, health and data dir."""
    try:
        rows = manager.status(load_settings())
    except (StackError, SettingsError) as exc:
        _fail(str(exc))
        return
    console.print(_table(rows))
    if not all(row.healthy for row in rows):
        raise typer.Exit(EXIT_UNHEALTHY)
