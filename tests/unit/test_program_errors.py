"""Program errors: every problem at once with its path; the file is read at the edge."""

from __future__ import annotations

import ast
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from models.program import ProgramError, parse_program
from program_file import load_program

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "program.example.yaml"


@pytest.fixture
def raw() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return copy.deepcopy(loaded)


def problems_of(source: dict[str, Any]) -> tuple[str, ...]:
    with pytest.raises(ProgramError) as caught:
        parse_program(source)
    return caught.value.problems


def test_every_problem_is_reported_at_once_with_its_path(raw: dict[str, Any]) -> None:
    raw["tiers"][2]["threshold"] = "lots"  # a field error ...
    raw["tiers"][1]["entry_rewards"] = ["welcome-silvr"]  # ... and cross-section ones
    raw["automations"][0]["manage_tier"]["tier"] = "Platnum"
    raw["earn"]["rounding"] = "nearest"
    problems = problems_of(raw)
    assert len(problems) == 4, problems
    starts = sorted(problem.split(":")[0] for problem in problems)
    assert starts == [
        "automations[0].manage_tier.tier",
        "earn.rounding",
        "tiers[1].entry_rewards[0]",
        "tiers[2].threshold",
    ]


def test_several_problems_are_listed_one_per_line(raw: dict[str, Any]) -> None:
    raw["currency"] = "euro"
    raw["tiers"][0]["rank"] = 1  # the same rank as tiers[1]
    with pytest.raises(ProgramError) as caught:
        parse_program(raw)
    lines = str(caught.value).splitlines()
    assert lines[0] == "2 problems:"
    assert lines[1].startswith("  - currency: ")
    assert lines[2].startswith("  - tiers[1].rank: 1 is already used by tiers[0]")


def test_a_reference_to_an_entry_with_its_own_problem_is_not_called_unknown(
    raw: dict[str, Any],
) -> None:
    raw["rewards"][0]["cost_points"] = -5  # welcome-silver is invalid, but it is declared
    problems = problems_of(raw)
    assert problems == ("rewards[0].cost_points: must be >= 1",)


def test_a_valid_program_still_reports_its_cross_problems_alone(raw: dict[str, Any]) -> None:
    raw["tiers"][1]["entry_rewards"] = ["nope"]
    raw["tiers"][3]["entry_rewards"] = ["nope-either"]
    problems = problems_of(raw)
    assert [p.split(":")[0] for p in problems] == [
        "tiers[1].entry_rewards[0]",
        "tiers[3].entry_rewards[0]",
    ]


@pytest.mark.parametrize("make", ["missing", "directory", "binary"])
def test_an_unreadable_program_file_names_the_setting(tmp_path: Path, make: str) -> None:
    path = tmp_path / "program.yaml"
    if make == "directory":
        path.mkdir()
    elif make == "binary":
        path.write_bytes(b"\xff\xfe\x00currency")
    with pytest.raises(ProgramError) as caught:
        load_program(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: cannot read the program file")
    assert "LOYALTY_PROGRAM_FILE" in message


def test_file_errors_keep_every_problem(tmp_path: Path, raw: dict[str, Any]) -> None:
    raw["currency"] = "euro"
    raw["earn"]["rounding"] = "nearest"
    path = tmp_path / "program.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ProgramError) as caught:
        load_program(path)
    assert str(caught.value).startswith(f"{path}: 2 problems:")
    assert len(caught.value.problems) == 2


IO_MODULES = {"pathlib", "os", "io", "yaml", "socket", "shutil", "subprocess", "tempfile"}


def test_the_domain_imports_no_io() -> None:
    found = []
    for module in sorted((ROOT / "models").rglob("*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
                names = ["open()"]
            found += [
                f"{module.relative_to(ROOT)}: {name}"
                for name in names
                if name.split(".")[0] in IO_MODULES or name == "open()"
            ]
    assert found == []


def test_a_key_written_twice_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "program.yaml"
    text = EXAMPLE.read_text(encoding="utf-8") + "\ncurrency: USD\n"
    path.write_text(text, encoding="utf-8")
    first = 1 + next(n for n, line in enumerate(text.splitlines()) if line.startswith("currency:"))
    last = len(text.splitlines())
    with pytest.raises(ProgramError) as caught:
        load_program(path)
    message = str(caught.value)
    assert "key 'currency' appears twice" in message
    assert f"lines {first} and {last}" in message
