"""The ``loyalty`` entry point: one typer app, one sub-app per command group."""

from __future__ import annotations

from importlib import metadata
from typing import Annotated, Any

import typer

from cli import adjust as adjust_cli
from cli import analytics as analytics_cli
from cli import bench as bench_cli
from cli import config as config_cli
from cli import consumers as consumers_cli
from cli import customer as customer_cli
from cli import customer_views, examples, reward_grants
from cli import demo as demo_cli
from cli import imports as imports_cli
from cli import program as program_cli
from cli import reward as reward_cli
from cli import schemas as schemas_cli
from cli import stack as stack_cli
from cli import tier as tier_cli
from cli import worker as worker_cli
from settings import SettingsError

EXIT_BAD_SETTINGS = 2


class LoyaltyTyper(typer.Typer):
    """The root app: an invalid setting met anywhere is one line on stderr and exit code 2."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command line."""
        try:
            return super().__call__(*args, **kwargs)
        except SettingsError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise SystemExit(EXIT_BAD_SETTINGS) from None


app = LoyaltyTyper(
    name="loyalty",
    help="Loyalty engine: points, stamps, VIP tiers and rewards over Kafka and MongoDB.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help: boolean options read `--notify / --no-notify`, flags carry no `<bool>`.
    rich_markup_mode=None,
)
app.add_typer(stack_cli.app, name="stack")
app.add_typer(bench_cli.app, name="bench")
app.add_typer(program_cli.app, name="program")
app.add_typer(schemas_cli.app, name="schemas")
app.add_typer(bench_cli.app, name="bench")
app.add_typer(imports_cli.app, name="import")
app.add_typer(adjust_cli.app, name="adjust")
app.add_typer(tier_cli.app, name="tier")
app.add_typer(reward_cli.app, name="reward")
app.add_typer(analytics_cli.app, name="analytics")
reward_cli.app.command("redeem")(reward_grants.redeem)
reward_cli.app.command("revoke")(reward_grants.revoke)
app.command("demo")(demo_cli.demo)
app.add_typer(customer_cli.app, name="customer")
customer_cli.app.command("list")(customer_views.list_customers)
customer_cli.app.command("export")(customer_views.export)
app.command("worker")(worker_cli.worker)
app.command("consumers")(consumers_cli.consumers)
app.add_typer(config_cli.app, name="config")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"loyalty {metadata.version('loyalty-engine')}")
        raise typer.Exit


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Loyalty engine: points, stamps, VIP tiers and rewards over Kafka and MongoDB."""


examples.attach(app)
