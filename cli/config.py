"""``loyalty config show``: the settings in force, each with where it came from."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr
from pydantic_settings import DotEnvSettingsSource
from rich.markup import escape
from rich.table import Table

from cli.console import make_console
from settings import (
    ENV_FILE,
    ENV_PREFIX,
    PORTS_FILE,
    SECRET_SETTINGS,
    Settings,
    SettingsError,
    load_settings,
    project_root,
    recorded_ports,
)

app = typer.Typer(help="Show the configuration in force.", no_args_is_help=True)
console = make_console()
errors = make_console(stderr=True)

EXIT_BAD_SETTINGS = 2
MASK = "********"
# user:password@ in a connection string (mongodb://, smtp URLs) never leaves the process.
URI_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")
FOLLOWS_STACK = {"kafka_bootstrap": "kafka_port", "mongo_uri": "mongo_port", "mail_dir": None}


@dataclass(frozen=True)
class Entry:
    """One setting as ``config show`` prints it."""

    name: str
    variable: str
    value: str
    source: str


def masked(name: str, value: object) -> str:
    """Return the value as text, secrets and credentials in URIs hidden."""
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if name in SECRET_SETTINGS:
        return MASK if value else ""
    text = str(value)
    return URI_CREDENTIALS.sub(f"{MASK}@", text)


def entries(
    settings: Settings, environ: dict[str, str], from_file: set[str], env_path: Path
) -> list[Entry]:
    """Describe every setting: value (masked) and source (environment, file or default)."""
    environ_upper = {key.upper() for key in environ}
    ports = recorded_ports(settings.stack_dir)
    rows = []
    for name in Settings.model_fields:
        variable = f"{ENV_PREFIX}{name.upper()}"
        if variable in environ_upper:
            source = "environment"
        elif name in from_file:
            source = f"file {env_path}"
        elif name in ports:
            source = f"file {settings.stack_dir / PORTS_FILE}"
        elif name in FOLLOWS_STACK:
            source = "default (follows the local stack)"
        else:
            source = "default"
        rows.append(Entry(name, variable, masked(name, getattr(settings, name)), source))
    return rows


def show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print every setting in force and where it came from (default, environment, file)."""
    env_path = project_root() / ENV_FILE
    try:
        settings = load_settings()
    except SettingsError as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_BAD_SETTINGS) from None
    from_file = (
        set(DotEnvSettingsSource(Settings, env_file=env_path)()) if env_path.is_file() else set()
    )
    rows = entries(settings, dict(os.environ), from_file, env_path)
    if as_json:
        data = {row.variable: {"value": row.value, "source": row.source} for row in rows}
        console.print_json(json.dumps(data))
        return
    table = Table("variable", "value", "source")
    for row in rows:
        table.add_row(row.variable, escape(row.value), row.source)
    console.print(table)
    console.print(f"project root: {project_root()}", highlight=False)


app.command("show")(show)
