"""Per-customer locks shared by the agents of one worker process.

The agents of the four input topics run concurrently in one process and often touch the same
customers (a storefront sends a customer's sign-up, orders and adjustments close together). Two
batches that load the same customer before either saves make the later save fail its version
check: nothing is lost or applied twice (the loser reloads and folds again), but the load, the
fold and the refused write are wasted, and under a steady mixed load they were a visible share of
the store's time. Holding a customer's lock from the load to the save turns those conflicts into
a short wait. Conflicts between processes (a rebalance) are still caught by the version check.

Locks are taken in sorted order, so two batches that share customers cannot deadlock; a lock
exists only while a batch holds or waits for it, so the table stays as small as the batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager


class CustomerLocks:
    """Mutual exclusion per customer id for the load-fold-save stretch of a batch."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    def __len__(self) -> int:
        """Customers whose lock is held or awaited right now."""
        return len(self._locks)

    @asynccontextmanager
    async def holding(self, customer_ids: Iterable[str]) -> AsyncIterator[None]:
        """Hold every one of these customers' locks for the body of the ``async with``."""
        wanted = sorted(set(customer_ids))
        for customer_id in wanted:
            self._users[customer_id] = self._users.get(customer_id, 0) + 1
            self._locks.setdefault(customer_id, asyncio.Lock())
        taken: list[asyncio.Lock] = []
        try:
            for customer_id in wanted:
                lock = self._locks[customer_id]
                await lock.acquire()
                taken.append(lock)
            yield
        finally:
            for lock in reversed(taken):
                lock.release()
            for customer_id in wanted:
                left = self._users[customer_id] - 1
                if left:
                    self._users[customer_id] = left
                else:
                    del self._users[customer_id]
                    del self._locks[customer_id]
