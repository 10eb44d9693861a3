"""The pure parts of ``loyalty bench pipeline``: the steady rate and the latency percentiles."""

from __future__ import annotations

import pytest

from cli.bench_e2e import Options, Report
from cli.bench_watch import steady_rate


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
