"""``loyalty bench decide`` runs end to end on small histories and explains bad options."""

from __future__ import annotations

from typer.testing import CliRunner

from cli.bench_decide import prepare
from cli.main import app
from program_file import load_program

runner = CliRunner()


def test_bench_decide_prints_a_row_per_history_length() -> None:
    result = runner.invoke(
        app, ["bench", "decide", "--orders", "0,30", "--events", "5", "--repeats", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "prior orders" in result.output
    rows = [line for line in result.output.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == ["0", "30"]
    assert "of the 0-order rate" in result.output


def test_bench_decide_refuses_history_lengths_that_are_not_numbers() -> None:
    result = runner.invoke(app, ["bench", "decide", "--orders", "0,many"])
    assert result.exit_code != 0
    assert "whole numbers separated by commas" in result.output


def test_the_benchmark_customer_is_built_by_the_rules_with_hot_orders_only() -> None:
    customer = prepare(load_program("program.example.yaml"), 40, 3, hot_orders=10)
    assert customer.state.order_count == 40  # partial refunds (every tenth event) keep them
    assert len(customer.state.orders) == 10
    assert customer.state.known_ids == frozenset()
    assert len(customer.messages) == 3
