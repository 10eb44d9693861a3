"""Prometheus metrics of the worker (``GET /metrics``); no personal data in any label."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BATCH_SIZES = (1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000)


class Metrics:
    """The worker's counters, gauges and histograms, in a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "loyalty_events", "Input records by type and outcome", ["type", "outcome"], registry=r
        )
        self.batch_size = Histogram(
            "loyalty_batch_size", "Records per batch", ["topic"], buckets=BATCH_SIZES, registry=r
        )
        self.batch_seconds = Histogram(
            "loyalty_batch_seconds", "Seconds from taking a batch to persisting it", ["topic"],
            registry=r,
        )  # fmt: skip
        self.dead_letters = Counter(
            "loyalty_dead_letters", "Records sent to the dead-letter topic", ["code"], registry=r
        )
        self.parked = Gauge("loyalty_parked", "Messages parked for unknown customers", registry=r)
        self.outbox_backlog = Gauge(
            "loyalty_outbox_backlog", "Customers with unsent outputs at the last check", registry=r
        )
        self.conflicts = Counter(
            "loyalty_version_conflicts", "Customers reloaded after a version conflict", registry=r
        )
        self.stage_seconds = Histogram(
            "loyalty_stage_seconds", "Seconds per batch stage (what bounds the rate)", ["stage"],
            registry=r,
        )  # fmt: skip
        self.published = Counter(
            "loyalty_outputs_published", "Output messages published", ["topic"], registry=r
        )

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time one stage of a batch (load, fold, save, side_effects) into ``stage_seconds``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds.labels(stage=name).observe(time.perf_counter() - started)

    def render(self) -> bytes:
        """Return the text exposition format."""
        return generate_latest(self.registry)
