"""What ``loyalty bench pipeline`` watches while the worker runs: its counter, rates, CPU."""

from __future__ import annotations

import asyncio
import os
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from stack.worker import WorkerProcess

PROGRESS_SECONDS = 1800.0
"""Longest wait for the worker to apply what was published (a stuck run fails, never hangs)."""


def cpu_seconds(pid: int | None) -> float:
    """User plus system CPU seconds a process has used so far (0 when it is gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Counter:
    """Reads the worker's count of persisted events of one type from ``GET /metrics``."""

    def __init__(self, worker: WorkerProcess, message_type: str) -> None:
        self.url = f"{worker.url}/metrics"
        self.message_type = message_type

    def _read(self) -> float:
        with urllib.request.urlopen(self.url, timeout=5) as response:  # noqa: S310 - our worker
            text = response.read().decode()
        total = 0.0
        for family in text_string_to_metric_families(text):
            if family.name != "loyalty_events":
                continue
            for sample in family.samples:
                if (
                    sample.name.endswith("_total")
                    and sample.labels.get("type") == self.message_type
                ):
                    total += sample.value
        return total

    async def read(self) -> float:
        """The current count."""
        return await asyncio.to_thread(self._read)

    async def until(self, target: float) -> list[tuple[float, float]]:
        """Sample (time, count) until the count reaches ``target``; return the samples."""
        samples: list[tuple[float, float]] = []
        deadline = time.monotonic() + PROGRESS_SECONDS
        while True:
            count = await self.read()
            samples.append((time.monotonic(), count))
            if count >= target:
                return samples
            if time.monotonic() > deadline:
                raise TimeoutError(f"the worker applied {count:.0f} of {target:.0f} events")
            await asyncio.sleep(0.25)


def steady_rate(samples: Sequence[tuple[float, float]], start: float, total: float) -> float:
    """Events/s between 10% and 90% of ``total`` counted from ``start`` (linear in between)."""

    def when(level: float) -> float:
        previous = samples[0]
        for sample in samples:
            if sample[1] >= level:
                t0, c0 = previous
                t1, c1 = sample
                return t1 if c1 == c0 else t0 + (t1 - t0) * (level - c0) / (c1 - c0)
            previous = sample
        return samples[-1][0]

    low, high = start + 0.1 * total, start + 0.9 * total
    seconds = when(high) - when(low)
    return (high - low) / seconds if seconds > 0 else 0.0
