"""Wait until a worker has applied a command, and say what it did (``--wait``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from admin.client import Command
from models.state import ActivityEntry, CustomerState

REFUSED_KIND = "rejected"


class StoredState(Protocol):
    """A customer as the store returns it."""

    @property
    def state(self) -> CustomerState: ...


class ActivityEntries(Protocol):
    """A page of activity, newest first."""

    @property
    def entries(self) -> Sequence[ActivityEntry]: ...


class CustomerReader(Protocol):
    """What ``--wait`` reads from the store."""

    async def get(self, customer_id: str) -> StoredState | None:
        """Return the customer as stored."""
        ...

    async def activity(self, customer_id: str, *, limit: int = 50) -> ActivityEntries:
        """Return the newest activity entries."""
        ...


@dataclass(frozen=True)
class Outcome:
    """What the worker did with one command: the state after it and its activity entries."""

    state: CustomerState
    entries: tuple[ActivityEntry, ...]

    @property
    def refusal(self) -> ActivityEntry | None:
        """Return the refusal entry when the command was refused."""
        return next((entry for entry in self.entries if entry.kind == REFUSED_KIND), None)


class NotAppliedError(TimeoutError):
    """The worker did not apply the command in time (is ``loyalty worker`` running?)."""


async def wait_for(
    reader: CustomerReader, command: Command, *, within: float, poll: float = 0.2
) -> Outcome:
    """Poll the store until the customer has applied ``command``; return what it did."""
    deadline = time.monotonic() + within
    while True:
        stored = await reader.get(command.customer_id)
        if stored is not None and stored.state.has_applied(command.id):
            page = await reader.activity(command.customer_id, limit=100)
            mine = tuple(entry for entry in page.entries if entry.cause.id == command.id)
            return Outcome(stored.state, tuple(reversed(mine)))
        if time.monotonic() >= deadline:
            raise NotAppliedError(
                f"command {command.id} was published but not applied within {within:.0f} s; "
                "is `loyalty worker` running? It will be applied once a worker runs"
            )
        await asyncio.sleep(poll)
