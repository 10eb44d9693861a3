"""`loyalty worker` refuses bad settings before it connects to anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOYALTY_REWARD_CODE_KEY", "unit-test-reward-code-key-of-32-characters")
    monkeypatch.setenv("LOYALTY_PROGRAM_FILE", str(ROOT / "program.example.yaml"))
    monkeypatch.setenv("LOYALTY_KAFKA_BOOTSTRAP", "127.0.0.1:9")  # nothing may be reached


def test_exposed_web_server_without_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOYALTY_WEB_HOST", "0.0.0.0")
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 1
    assert "LOYALTY_API_TOKEN" in result.output


def test_unknown_agent_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["worker", "--only", "orders,payments"])
    assert result.exit_code == 2
    assert "payments" in result.output


def test_missing_program_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOYALTY_PROGRAM_FILE", str(tmp_path / "nope.yaml"))
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 1
    assert "nope.yaml" in result.output
