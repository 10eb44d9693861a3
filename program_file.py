"""Reading the program file: the edge where YAML on disk becomes a validated ``Program``.

The domain (``models``) validates a mapping and imports no I/O; this module reads the file
that ``LOYALTY_PROGRAM_FILE`` names (or a path given on the command line), parses the YAML and
prefixes every error with the file's path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from models.program import Program, ProgramError, parse_program

PROGRAM_FILE_SETTING = "LOYALTY_PROGRAM_FILE"


class _UniqueKeyLoader(yaml.SafeLoader):
    """The safe loader, refusing a key written twice in one mapping.

    PyYAML keeps the last value silently, so a second ``tiers:`` would replace the first
    without a word; here it is an error naming both lines.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} appears twice in one mapping (lines {seen[key]} and {line}); "
                    "keep one",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_program_text(text: str) -> Program:
    """Validate a program written as YAML text."""
    try:
        source = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ProgramError(f"not valid YAML: {exc}") from None
    return parse_program(source)


def load_program(path: Path | str) -> Program:
    """Read and validate the program file; errors start with the file's path.

    A file that cannot be read names ``LOYALTY_PROGRAM_FILE``, the setting that points at it.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ProgramError(
            f"{path}: cannot read the program file: {reason or exc}. {PROGRAM_FILE_SETTING} "
            "names it (default program.example.yaml in the working directory); set it to the "
            "path of a readable program YAML file"
        ) from None
    try:
        return parse_program_text(text)
    except ProgramError as exc:
        raise ProgramError(f"{path}: {exc}", exc.problems) from None
