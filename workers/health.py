"""Readiness of the worker's dependencies and the bounded retry every I/O call goes through."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import structlog

T = TypeVar("T")
Dependency = Literal["kafka", "store"]

log = structlog.get_logger("loyalty.worker")


@dataclass
class Health:
    """Which dependencies answered on their last use; ``/health`` reports it."""

    up: dict[str, bool] = field(default_factory=lambda: {"kafka": True, "store": True})

    @property
    def ready(self) -> bool:
        """Whether every dependency answered."""
        return all(self.up.values())

    def mark(self, dependency: Dependency, ok: bool) -> None:
        """Record whether a dependency just answered."""
        self.up[dependency] = ok


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: ``first`` doubling up to ``cap`` seconds."""

    first: float = 0.1
    cap: float = 5.0

    def delay(self, attempt: int) -> float:
        """Return the pause before retry number ``attempt`` (1-based)."""
        base = min(self.cap, self.first * 2.0 ** (attempt - 1))
        return base * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not security


async def retrying(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    dependency: Dependency,
    health: Health,
    backoff: Backoff = Backoff(),
    permanent: Callable[[Exception], bool] | None = None,
) -> T:
    """Run ``operation`` until it succeeds, pausing with bounded exponential backoff.

    The caller's batch is not acknowledged until this returns, so nothing is lost while a
    dependency is down; cancellation (shutdown) propagates at once, and so does an error that
    ``permanent`` says no retry can get past (the dependency answered: it is not marked down).
    """
    attempt = 0
    while True:
        try:
            result = await operation()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if permanent is not None and permanent(exc):
                log.warning(  # the caller logs the traceback where it handles the error
                    "not retried", what=what, dependency=dependency,
                    error=f"{type(exc).__name__}: {exc}"[:2000],
                )  # fmt: skip
                raise
            attempt += 1
            health.mark(dependency, ok=False)
            pause = backoff.delay(attempt)
            log.warning(
                "retrying", what=what, dependency=dependency, attempt=attempt,
                error=f"{type(exc).__name__}: {exc}", pause_s=round(pause, 2),
            )  # fmt: skip
            await asyncio.sleep(pause)
        else:
            health.mark(dependency, ok=True)
            return result
