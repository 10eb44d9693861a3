"""The pure parts of ``loyalty bench pipeline``: rates, percentiles and the seeder."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cli.bench_e2e import Options, Report
from cli.bench_load import Seeder
from cli.bench_watch import steady_rate
from store.memory import MemoryCustomerRepository
from tests.unit.factories import CODE_KEY, NOW, PROGRAM


def test_steady_rate_ignores_a_slow_start_and_a_slow_end() -> None:
    # 1,000 events: nothing for 10 s (start-up), then 100/s, then a slow tail.
    samples = [(0.0, 0), (10.0, 0), (19.0, 900), (40.0, 1000)]
    assert steady_rate(samples, 0, 1000) == pytest.approx(100.0, rel=0.05)


def test_steady_rate_counts_from_a_starting_count() -> None:
    samples = [(0.0, 500), (10.0, 1500)]
    assert steady_rate(samples, 500, 1000) == pytest.approx(100.0)


def test_percentiles_use_the_nearest_rank() -> None:
    report = Report(Options(), latencies=[float(n) for n in range(1, 101)])
    assert report.percentile(0.5) == 51.0
    assert report.percentile(0.99) == 100.0
    assert Report(Options()).percentile(0.5) == 0.0


async def test_the_seeder_writes_customers_and_histories_through_the_rules() -> None:
    repository = MemoryCustomerRepository()
    seeder = Seeder(repository, PROGRAM, CODE_KEY, NOW)
    start = NOW - timedelta(days=10)
    await seeder.customers(["h-1", "h-2"], start)
    await seeder.history(["h-1", "h-2"], 7, start + timedelta(hours=1), per_round=3)
    for customer_id in ("h-1", "h-2"):
        stored = await repository.get(customer_id)
        assert stored is not None
        assert len(stored.state.orders) == 7
    assert await repository.pending_outbox() == []  # seeded outputs are history, not news


async def test_the_seeder_refuses_to_leave_a_seed_short() -> None:
    seeder = Seeder(MemoryCustomerRepository(), PROGRAM, CODE_KEY, NOW)
    # Orders for a customer that does not exist would be parked, not applied: say so.
    with pytest.raises(RuntimeError, match="could not apply 2 of 2 messages; the first was parked"):
        await seeder.history(["ghost"], 2, NOW - timedelta(days=1))
