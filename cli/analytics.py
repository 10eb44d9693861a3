"""``loyalty analytics summary``: what the analytics example has collected from tier changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.console import make_console
from consumers.analytics import read_lines, summarize
from settings import SettingsError, get_settings

app = typer.Typer(help="The analytics example's tier-change log.", no_args_is_help=True)
console = make_console()
errors = make_console(stderr=True)


@app.callback()
def _group() -> None:
    """The analytics example's tier-change log."""


@app.command("summary")
def summary(
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Tier-changes file (default LOYALTY_TIER_CHANGES_FILE)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Count tier changes per day, direction and cause, and the members each tier holds now."""
    try:
        path = file if file is not None else get_settings().tier_changes_file
    except SettingsError as exc:
        errors.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    if not path.exists():
        errors.print(
            f"[red]error:[/red] {path} does not exist; run `loyalty consumers --only analytics` "
            "first, or point --file at a tier-changes file",
            markup=True,
            highlight=False,
        )
        raise typer.Exit(1)
    result = summarize(read_lines(path)).as_json()
    if as_json:
        console.print_json(json.dumps(result))
        return
    console.print(f"{result['changes']} tier changes in {path}", highlight=False)
    for title, key in (
        ("per day", "per_day"),
        ("per direction", "per_direction"),
        ("per cause", "per_cause"),
        ("members per tier now", "members_per_tier"),
    ):
        table = Table(
            title.split(" ", 1)[1] if key != "members_per_tier" else "tier",
            "count",
            title=title,
            title_justify="left",
        )
        for name, count in result[key].items():
            table.add_row(str(name), str(count))
        console.print(table)
