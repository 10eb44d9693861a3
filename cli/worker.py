"""``loyalty worker``: run the stream workers (all agents, or ``--only orders,...``)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import faust
import typer

from bootstrap import configure_logging, open_worker
from cli.console import make_console
from client_options import kafka_options
from models.program import ProgramError
from program_file import load_program
from settings import Settings, SettingsError, load_settings
from topics.admin import SERVICE_BROKER_WAIT, TopicLayoutError, ensure_namespace_topics
from web_access import ExposureError, check_exposure
from workers.app import AGENTS, Runtime, build_app

console = make_console(stderr=True)


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def parse_only(only: str | None) -> tuple[str, ...]:
    """Return the agents named by ``--only`` (all when empty), or raise typer.BadParameter."""
    if not only:
        return tuple(AGENTS)
    names = tuple(dict.fromkeys(part.strip() for part in only.split(",") if part.strip()))
    unknown = [name for name in names if name not in AGENTS]
    if unknown or not names:
        raise typer.BadParameter(
            f"unknown agent {', '.join(map(repr, unknown)) or '(none)'}; "
            f"choose from: {', '.join(AGENTS)}"
        )
    return names


def _preflight(settings: Settings) -> None:
    """Fail fast, with the reason, on what would otherwise fail inside the running worker."""
    try:
        load_program(settings.program_file)
        settings.code_key()
        check_exposure(settings.web_host, settings.web_token())
    except (ProgramError, SettingsError, ExposureError) as exc:
        _fail(str(exc))
    try:
        asyncio.run(
            ensure_namespace_topics(
                settings.kafka_bootstrap,
                settings.topic_partitions,
                settings.topic_namespace,
                client_options=kafka_options(settings),
                within=SERVICE_BROKER_WAIT,
                wait_for_broker=True,
            )
        )
    except TopicLayoutError as exc:
        _fail(str(exc))


def worker(
    only: Annotated[
        str | None,
        typer.Option(
            "--only",
            help=f"Comma-separated agents to run ({', '.join(AGENTS)}); default: all.",
        ),
    ] = None,
) -> None:
    """Run the stream workers against Kafka and MongoDB until SIGTERM or Ctrl-C."""
    agents = parse_only(only)
    try:
        settings = load_settings()
    except SettingsError as exc:
        _fail(str(exc))
        return
    configure_logging(settings)
    _preflight(settings)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    runtime = Runtime(lambda: open_worker(settings), loop=loop)
    app = build_app(settings, runtime, agents)
    faust.Worker(
        app,
        runtime,
        loop=loop,
        # faust's own INFO lines (subscription tables, fetcher states) drown the worker's log.
        loglevel="debug" if settings.log_level.upper() == "DEBUG" else "warning",
        quiet=True,
        redirect_stdouts=False,
    ).execute_from_commandline()
