"""The documentation is self-contained: every link stays in the repository and resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP = {".git", ".venv", ".stack", "node_modules", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
# [text](target) and [text]: target; images too. Code spans are removed first.
INLINE = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)


def markdown_files() -> list[Path]:
    return sorted(
        path
        for path in ROOT.rglob("*.md")
        if not SKIP.intersection(path.relative_to(ROOT).parts)
        and "egg-info" not in str(path.relative_to(ROOT))
    )


def links(path: Path) -> list[str]:
    text = CODE.sub("", path.read_text(encoding="utf-8"))
    return INLINE.findall(text) + REFERENCE.findall(text)


def test_there_are_docs_to_check() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in markdown_files()}
    assert {"README.md", "docs/architecture.md", "docs/cli.md"} <= names


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_stays_in_the_repository_and_resolves(path: Path) -> None:
    bad = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a web address or an anchor in the same page
        local = (path.parent / target.split("#", 1)[0]).resolve()
        if not local.is_relative_to(ROOT):
            bad.append(f"{target} leaves the repository")
        elif not local.exists():
            bad.append(f"{target} does not exist")
    assert bad == [], f"{path.relative_to(ROOT)}: {bad}"


def test_no_document_points_at_the_shared_folder_outside_the_clone() -> None:
    offenders = [
        p.relative_to(ROOT).as_posix()
        for p in markdown_files()
        if "../shared/" in p.read_text(encoding="utf-8")
    ]
    assert offenders == []


def test_the_tests_architecture_names_exist() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = []
    current: Path | None = None
    for match in re.finditer(r"`(tests/[\w/]+\.py)(?:::([\w:]+))?`|`::(\w+)`", text):
        file, name, continued = match.groups()
        if file:
            current = ROOT / file
            assert current.is_file(), f"{file} does not exist"
        test = name.split("::")[-1] if name else continued
        if test and current is not None and f"def {test}(" not in current.read_text():
            missing.append(f"{current.relative_to(ROOT)}::{test}")
    assert missing == [], f"docs/architecture.md names tests that do not exist: {missing}"
