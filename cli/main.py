"""The ``loyalty`` entry point: one typer app, one sub-app per command group."""

from __future__ import annotations

import typer

from cli import adjust as adjust_cli
from cli import analytics as analytics_cli
from cli import bench as bench_cli
from cli import consumers as consumers_cli
from cli import customer as customer_cli
from cli import customer_views, reward_grants
from cli import demo as demo_cli
from cli import imports as imports_cli
from cli import program as program_cli
from cli import reward as reward_cli
from cli import schemas as schemas_cli
from cli import stack as stack_cli
from cli import tier as tier_cli
from cli import worker as worker_cli

app = typer.Typer(
    name="loyalty",
    help="Loyalty engine: points, stamps, VIP tiers and rewards over Kafka and MongoDB.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
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
