"""``loyalty consumers``: run the rewards issuer, the email notifier and the analytics example."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

import bootstrap
from cli.console import make_console
from consumers import app as consumers_app
from models.program import ProgramError
from settings import SettingsError, get_settings
from topics.admin import TopicLayoutError
from web_access import ExposureError

errors = make_console(stderr=True)


def consumers(
    only: Annotated[
        str | None,
        typer.Option(
            "--only",
            help="Comma-separated consumers to run: rewards, notifier, analytics (default: all).",
        ),
    ] = None,
) -> None:
    """Run the downstream consumers and their web server (/health, /metrics, /coupons/<code>)."""
    try:
        names = consumers_app.parse_only(only)
        settings = get_settings()
    except (ValueError, SettingsError) as exc:
        errors.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    bootstrap.configure_logging(settings)
    try:
        asyncio.run(consumers_app.run(settings, names))
    except (ExposureError, ProgramError, TopicLayoutError, OSError) as exc:
        errors.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from None
