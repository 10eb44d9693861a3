"""``loyalty bench ...``: measurements of the engine, one subcommand per part measured.

Each subcommand reports numbers (never asserts them) with the ceiling it compares to; the
results and how they were taken are written into docs/BENCHMARKS.md.
"""

from __future__ import annotations

import typer

from cli.bench_decide import decide_bench
from cli.bench_import import bench_import
from cli.bench_notify import notify
from cli.bench_pipeline import pipeline
from cli.bench_soak import soak

app = typer.Typer(help="Measure the engine: rules, pipeline, imports, soak.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Measure the engine: rules, pipeline, imports, soak."""


app.command("decide")(decide_bench)
app.command("notify")(notify)
app.command("import")(bench_import)
app.command("pipeline")(pipeline)
app.command("soak")(soak)
