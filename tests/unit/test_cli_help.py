"""The command line as a user meets it: help with an example, flags, --version, config show."""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.config import MASK, entries, masked
from cli.examples import EXAMPLES, commands
from cli.main import EXIT_BAD_SETTINGS, LoyaltyTyper, app
from settings import PORTS_FILE, Settings, SettingsError

runner = CliRunner()
PATHS = [path for path, _ in commands(app)]


def test_every_command_has_an_example_and_no_example_is_stale() -> None:
    assert sorted(set(PATHS) - set(EXAMPLES)) == [], "add an example to cli/examples.py"
    assert sorted(set(EXAMPLES) - set(PATHS)) == [], "examples of commands that do not exist"


@pytest.mark.parametrize("path", PATHS)
def test_help_ends_with_one_example_and_shows_flags_plainly(path: str) -> None:
    result = runner.invoke(app, [*path.split(), "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    assert lines[-1] == f"Example: {EXAMPLES[path]}"
    assert f"loyalty {path}" in lines[-1]
    assert sum(line.startswith("Example:") for line in lines) == 1
    assert "<bool>" not in result.output
    assert "BOOLEAN" not in result.output


def test_a_switch_shows_both_of_its_names() -> None:
    result = runner.invoke(app, ["tier", "change", "--help"], terminal_width=200)
    assert "--notify / --no-notify" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"loyalty {metadata.version('loyalty-engine')}"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("reward_code_key", "k" * 40),
        ("smtp_password", "hunter2-hunter2"),
        ("api_token", "t0ken-t0ken"),
        ("mongo_uri", "mongodb://admin:hunter2@db:27017/"),
    ],
)
def test_config_show_masks_secrets(name: str, value: str) -> None:
    shown = masked(name, Settings(**{name: value}).__getattribute__(name))
    assert "hunter2" not in shown
    assert value not in shown
    assert MASK in shown


def test_config_show_names_where_each_setting_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("LOYALTY_")]:
        monkeypatch.delenv(name)  # the sources below are the only ones this test gives
    (tmp_path / PORTS_FILE).write_text(json.dumps({"mongo_port": 29017}))
    settings = Settings(stack_dir=tmp_path, smtp_port=2626, log_level="DEBUG")
    rows = {
        row.name: row
        for row in entries(
            settings,
            {"LOYALTY_SMTP_PORT": "2626", "LOYALTY_STACK_DIR": str(tmp_path)},
            {"log_level"},
            tmp_path / ".env",
        )
    }
    assert rows["smtp_port"].source == "environment"
    assert rows["log_level"].source == f"file {tmp_path / '.env'}"
    assert rows["mongo_port"].source == f"file {tmp_path / PORTS_FILE}"
    assert rows["mongo_port"].value == "29017"
    assert rows["web_port"].source == "default"
    assert rows["kafka_bootstrap"].source.startswith("default")
    assert set(rows) == set(Settings.model_fields)


def test_config_show_prints_every_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOYALTY_SMTP_PASSWORD", "hunter2-hunter2")
    result = runner.invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert set(shown) == {f"LOYALTY_{name.upper()}" for name in Settings.model_fields}
    assert shown["LOYALTY_SMTP_PASSWORD"] == {"value": MASK, "source": "environment"}


def test_a_bad_setting_is_an_error_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOYALTY_PROGRAM_FILE", "/nowhere/program.yaml")
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "LOYALTY_PROGRAM_FILE: no such file: /nowhere/program.yaml" in result.stderr


def test_an_invalid_setting_met_anywhere_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    probe = LoyaltyTyper()

    @probe.command()
    def read() -> None:
        raise SettingsError("invalid settings: LOYALTY_WEB_PORT: too big (got '70000')")

    @probe.command()
    def other() -> None:
        """Keep `read` a sub-command."""

    with pytest.raises(SystemExit) as caught:
        probe(["read"])
    assert caught.value.code == EXIT_BAD_SETTINGS
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: invalid settings: LOYALTY_WEB_PORT: too big (got '70000')\n"


def test_docs_cli_lists_every_command() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    missing = [path for path in PATHS if f"`loyalty {path}" not in page]
    assert missing == [], "add these commands to docs/cli.md with their exit codes"
