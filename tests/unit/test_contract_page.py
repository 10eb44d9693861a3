"""Every JSON example on docs/contract.md is read by the code as the page says."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from models.messages import SYSTEM_TYPES
from models.outputs import OutputMessage
from topics.codec import INPUT_TYPES, OUTPUT_TYPES, parse_message
from topics.routing import DeadLetter

PAGE = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
_BLOCK = re.compile(r"```json\n(.*?)```", re.S)
_OUTPUTS: TypeAdapter[Any] = TypeAdapter(OutputMessage)


def _examples() -> list[dict[str, Any]]:
    return [json.loads(block) for block in _BLOCK.findall(PAGE.read_text(encoding="utf-8"))]


def test_the_page_has_an_example_of_every_message_the_engine_reads_or_writes() -> None:
    shown = {example.get("type") for example in _examples()}
    internal = SYSTEM_TYPES  # the engine's own time events
    assert set(INPUT_TYPES) - internal <= shown
    assert set(OUTPUT_TYPES) <= shown


@pytest.mark.parametrize("example", _examples(), ids=lambda e: e.get("type", "dead-letter"))
def test_each_example_is_valid(example: dict[str, Any]) -> None:
    kind = example.get("type")
    if kind in INPUT_TYPES:
        assert parse_message(json.dumps(example).encode()).type == kind
    elif kind in OUTPUT_TYPES:
        assert _OUTPUTS.validate_python(example).type == kind
    else:
        DeadLetter.model_validate(example)


def test_the_readme_links_the_contract_page_inside_the_repository() -> None:
    readme = (PAGE.parents[1] / "README.md").read_text(encoding="utf-8")
    assert "(docs/contract.md)" in readme
    assert "shared/CONTRACT.md" not in readme


def test_the_page_and_docs_schemas_name_the_same_public_message_types() -> None:
    schemas = PAGE.parent / "schemas"
    suffix = ".schema.json"
    files = {p.name.removesuffix(suffix) for p in schemas.glob(f"*{suffix}")}
    public_files = files - SYSTEM_TYPES - {"dead-letter", "program"}
    on_page = {e["type"] for e in _examples() if "type" in e} - SYSTEM_TYPES
    assert sorted(on_page - public_files) == [], "named on docs/contract.md without a schema"
    assert sorted(public_files - on_page) == [], "a schema for a type docs/contract.md omits"
