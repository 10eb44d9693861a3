"""The rich consoles the commands print with."""

from __future__ import annotations

import sys

from rich.console import Console

# Piped or captured output (CI logs, files) gets room for the tables; rich would use 80 columns.
PIPED_WIDTH = 140


def make_console(*, stderr: bool = False) -> Console:
    """Return a console: the terminal's width on a terminal, PIPED_WIDTH otherwise."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else PIPED_WIDTH
    return Console(stderr=stderr, width=width)
