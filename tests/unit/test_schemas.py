"""The checked-in JSON Schemas (docs/schemas) equal a fresh export."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from cli.schemas import build_schemas, stale_files, write_schemas

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def test_checked_in_schemas_are_up_to_date() -> None:
    stale = stale_files(SCHEMAS)
    assert not stale, f"stale schemas {stale}: run `loyalty schemas export` and commit docs/schemas"


def test_one_schema_per_message_type() -> None:
    names = set(build_schemas())
    for kind in ("order.paid", "tier.manage", "tier.changed", "notification.requested"):
        assert f"{kind}.schema.json" in names
    order = build_schemas()["order.paid.schema.json"]
    total = order["$defs"]["OrderPaidData"]["properties"]["total"]
    assert total["type"] == "string"


def test_export_then_check(tmp_path: Path) -> None:
    runner = CliRunner()
    assert (
        runner.invoke(app, ["schemas", "export", "--check", "--out", str(tmp_path)]).exit_code == 1
    )
    result = runner.invoke(app, ["schemas", "export", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (
        runner.invoke(app, ["schemas", "export", "--check", "--out", str(tmp_path)]).exit_code == 0
    )
    (tmp_path / "order.paid.schema.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "old.schema.json").write_text("{}\n", encoding="utf-8")
    result = runner.invoke(app, ["schemas", "export", "--check", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "order.paid.schema.json" in result.output
    assert "old.schema.json" in result.output
    assert write_schemas(tmp_path) == ["order.paid.schema.json", "old.schema.json"]
    assert not (tmp_path / "old.schema.json").exists()
