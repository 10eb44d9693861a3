"""Per-customer locks: batches of one process that share customers wait instead of conflicting."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from store.repository import LoadRequest
from tests.unit.pipeline_kit import Kit
from tests.unit.test_pipeline import customer, paid, upsert
from topics import names
from workers.locks import CustomerLocks


async def test_a_batch_waits_for_a_customer_another_batch_holds() -> None:
    locks = CustomerLocks()
    order: list[str] = []
    first_in = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with locks.holding(["b", "a"]):
            order.append("first in")
            first_in.set()
            await release_first.wait()
            order.append("first out")

    async def second() -> None:
        await first_in.wait()
        async with locks.holding(["b"]):
            order.append("second in")

    async def third() -> None:
        await first_in.wait()
        async with locks.holding(["c"]):  # shares nothing with the first: goes straight in
            order.append("third in")

    tasks = [asyncio.create_task(job()) for job in (first, second, third)]
    await first_in.wait()
    for _ in range(5):
        await asyncio.sleep(0)
    assert order == ["first in", "third in"]
    release_first.set()
    await asyncio.gather(*tasks)
    assert order == ["first in", "third in", "first out", "second in"]
    assert len(locks) == 0  # no lock outlives the batches that used it


async def test_batches_taking_the_same_customers_in_any_order_do_not_deadlock() -> None:
    locks = CustomerLocks()
    done: list[int] = []

    async def batch(n: int, ids: list[str]) -> None:
        async with locks.holding(ids):
            await asyncio.sleep(0)
            done.append(n)

    ids = ["a", "b", "c", "d"]
    jobs = [batch(n, ids if n % 2 else list(reversed(ids))) for n in range(20)]
    await asyncio.wait_for(asyncio.gather(*jobs), timeout=10)
    assert sorted(done) == list(range(20))
    assert len(locks) == 0


async def test_a_failing_batch_releases_its_customers() -> None:
    locks = CustomerLocks()
    with pytest.raises(RuntimeError):
        async with locks.holding(["a"]):
            raise RuntimeError("boom")
    async with asyncio.timeout(5):
        async with locks.holding(["a"]):
            pass
    assert len(locks) == 0


class SlowLoads:
    """Wraps a repository: every load yields to the loop after reading, so batches interleave."""

    def __init__(self, kit: Kit) -> None:
        self.inner = kit.repository

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def load_many(self, requests: list[LoadRequest]) -> Any:
        loaded = await self.inner.load_many(requests)
        for _ in range(3):
            await asyncio.sleep(0)
        return loaded


async def test_two_agents_on_the_same_customer_wait_rather_than_conflict() -> None:
    kit = Kit()
    await kit.handle(kit.record(names.CUSTOMERS, upsert()))
    kit.pipeline.repository = SlowLoads(kit)  # type: ignore[assignment]
    await asyncio.gather(
        kit.handle(kit.record(names.ORDERS, paid("o-1", "30.00", id="e-1"))),
        kit.handle(kit.record(names.ORDERS, paid("o-2", "40.00", id="e-2"), partition=1)),
    )
    assert (await customer(kit)).points_balance == 70
    assert kit.metrics.registry.get_sample_value("loyalty_version_conflicts_total") == 0
    assert len(kit.pipeline.locks) == 0
