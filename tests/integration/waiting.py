"""Wait on a condition with a deadline, failing with what was awaited (no sleeps-and-hope)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest


async def eventually(
    check: Callable[[], Awaitable[bool]],
    *,
    within: float,
    what: str,
    detail: Callable[[], str] = str,
    interval: float = 0.1,
) -> None:
    """Poll an async condition every `interval` s until it holds; fail after `within` s."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within} s waiting for {what}\n{detail()}")
        await asyncio.sleep(interval)
