"""``loyalty schemas export``: one JSON Schema file per message type, for other teams' tooling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel

from models.program import Program
from settings import project_root
from topics.codec import INPUT_CLASSES, OUTPUT_CLASSES, message_type
from topics.routing import DeadLetter

app = typer.Typer(help="JSON Schemas of the messages and the program file.", no_args_is_help=True)

# Anchored at the project root: `loyalty schemas export` from any directory updates the same files.
DEFAULT_DIR = project_root() / "docs" / "schemas"
SUFFIX = ".schema.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

# Inputs are described as senders write them, outputs as the engine serialises them.


def _schema(model: type[BaseModel], mode: Literal["validation", "serialization"]) -> dict[str, Any]:
    return {"$schema": DIALECT, **model.model_json_schema(mode=mode)}


def build_schemas() -> dict[str, dict[str, Any]]:
    """Return every schema by file name: one per message type, the dead letter, the program."""
    schemas = {f"{message_type(m)}{SUFFIX}": _schema(m, "validation") for m in INPUT_CLASSES}
    schemas |= {f"{message_type(m)}{SUFFIX}": _schema(m, "serialization") for m in OUTPUT_CLASSES}
    schemas[f"dead-letter{SUFFIX}"] = _schema(DeadLetter, "serialization")
    schemas[f"program{SUFFIX}"] = _schema(Program, "validation")
    return schemas


def render(schema: dict[str, Any]) -> str:
    """Return a schema as the checked-in text: sorted keys, two-space indent, final newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def stale_files(directory: Path) -> list[str]:
    """Return the schema files in ``directory`` that are missing, outdated or no longer made."""
    wanted = {name: render(schema) for name, schema in build_schemas().items()}
    stale = []
    for name, text in sorted(wanted.items()):
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    stale.extend(sorted(p.name for p in directory.glob(f"*{SUFFIX}") if p.name not in wanted))
    return stale


def write_schemas(directory: Path) -> list[str]:
    """Write every schema into ``directory``, remove ones no longer made; return changed names."""
    changed = stale_files(directory) if directory.is_dir() else sorted(build_schemas())
    directory.mkdir(parents=True, exist_ok=True)
    wanted = build_schemas()
    for name, schema in wanted.items():
        (directory / name).write_text(render(schema), encoding="utf-8")
    for path in directory.glob(f"*{SUFFIX}"):
        if path.name not in wanted:
            path.unlink()
    return changed


@app.callback()
def _group() -> None:
    """JSON Schemas of the messages and the program file."""


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", help="Folder for the schema files.")] = DEFAULT_DIR,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if any file is stale.")
    ] = False,
) -> None:
    """Write one JSON Schema file per message type (sorted keys, stable formatting)."""
    if check:
        stale = stale_files(out)
        if stale:
            typer.echo(f"stale schemas in {out} (run `loyalty schemas export`):", err=True)
            for name in stale:
                typer.echo(f"  {name}", err=True)
            raise typer.Exit(1)
        typer.echo(f"{out}: {len(build_schemas())} schemas up to date")
        return
    changed = write_schemas(out)
    typer.echo(f"{out}: {len(build_schemas())} schemas written, {len(changed)} changed")
