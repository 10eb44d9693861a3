"""The ``loyalty`` entry point: one typer app, one sub-app per command group."""

from __future__ import annotations

import typer

from cli import bench as bench_cli
from cli import demo as demo_cli
from cli import program as program_cli
from cli import schemas as schemas_cli
from cli import stack as stack_cli

app = typer.Typer(
    name="loyalty",
    help="Loyalty engine: points, stamps, VIP tiers and rewards over Kafka and MongoDB.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(stack_cli.app, name="stack")
app.add_typer(program_cli.app, name="program")
app.add_typer(schemas_cli.app, name="schemas")
app.add_typer(bench_cli.app, name="bench")
app.command("demo")(demo_cli.demo)
