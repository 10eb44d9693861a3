"""What ``loyalty bench soak`` concludes from its samples: slopes, verdicts and the printed forms.

Pure functions over the samples the soak takes (no I/O), so the arithmetic and the wording of the
verdicts are unit-tested on their own.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

PROCESSES = ("worker", "consumers", "kafka", "mongodb", "smtp")
"""Processes whose RSS is sampled, in table order (a process whose PID is unknown is left out)."""
GROUPS = ("worker", "rewards", "notifier")
"""Consumer groups whose lag is sampled: the worker's and each of the consumers'."""

LEVEL_MB_PER_MINUTE = 0.1
"""Memory counts as level when it grows by at most this much (1 MB per 10 minutes)."""
LAG_SHARE_PER_MINUTE = 0.01
"""Lag counts as growing when its slope exceeds this share of the messages produced a minute."""
MIN_POINTS = 3
"""Fewest samples a slope is computed from."""


@dataclass(frozen=True)
class Sample:
    """One sample of the running soak."""

    minute: float
    """Minutes since the load started."""
    produced: int
    applied: int
    """Input messages the worker has finished (every outcome), from its metrics."""
    emails: int
    """Emails the notifier has sent, from its metrics."""
    lag: dict[str, int]
    """Consumer lag by group (see ``GROUPS``)."""
    rss_mb: dict[str, float]
    """Resident memory by process, MB (a process that was gone is missing)."""
    outbox: int
    """Outbox entries stored but not published yet."""
    load: float
    """The machine's one-minute load average."""


@dataclass(frozen=True)
class Trend:
    """The slope of one series after the warm-up, over all of it and over its second half."""

    name: str
    first: float
    last: float
    slope: float | None
    late_slope: float | None
    verdict: str


@dataclass
class SoakReport:
    """Everything ``loyalty bench soak`` prints."""

    command: str
    machine: str
    rate: float
    rate_source: str
    minutes: float
    warmup_minutes: float
    samples: list[Sample] = field(default_factory=list)
    drain_seconds: float | None = None
    final_lag: dict[str, int] = field(default_factory=dict)
    final_outbox: int | None = None
    final_applied: int | None = None
    final_emails: int | None = None
    load_start: float = 0.0
    load_end: float = 0.0
    stopped: dict[str, bool] = field(default_factory=dict)
    """Each process this soak started, and whether it is gone at the end."""
    counts: dict[str, int] = field(default_factory=dict)
    """Messages produced by type."""

    @property
    def memory(self) -> list[Trend]:
        """The memory trend of each process sampled."""
        return memory_trends(self.samples, self.warmup_minutes)

    @property
    def lag(self) -> list[Trend]:
        """The lag trend of each consumer group."""
        return lag_trends(self.samples, self.warmup_minutes, self.rate)


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """The least-squares slope of y over x; None with fewer than two distinct x."""
    try:
        return statistics.linear_regression([x for x, _ in points], [y for _, y in points]).slope
    except statistics.StatisticsError:
        return None


def after_warmup(samples: Sequence[Sample], warmup_minutes: float) -> list[Sample]:
    """The samples taken after the warm-up."""
    return [s for s in samples if s.minute >= warmup_minutes]


def _trend(
    name: str, points: list[tuple[float, float]], tolerance: float, unit: str
) -> Trend | None:
    if not points:
        return None
    first, last = points[0][1], points[-1][1]
    if len(points) < MIN_POINTS:
        return Trend(name, first, last, None, None, f"too few samples ({len(points)})")
    whole = slope(points)
    late_points = points[len(points) // 2 :]
    late = slope(late_points) if len(late_points) >= MIN_POINTS else None
    return Trend(name, first, last, whole, late, verdict(whole, late, tolerance, unit))


def verdict(whole: float | None, late: float | None, tolerance: float, unit: str) -> str:
    """Name what a series did: flat, levelled off, still growing or falling.

    ``whole`` is the slope after the warm-up, ``late`` the slope over its second half (None when
    that half is too short to tell); ``tolerance`` is the largest slope still called level.
    """
    if whole is None:
        return "too few samples"
    limit = f"{tolerance:g} {unit}"
    if abs(whole) <= tolerance:
        return f"flat (within ±{limit})"
    if whole < 0:
        return "falling"
    if late is not None and late <= tolerance:
        return f"levelled off (second half <= {limit})"
    return f"still growing (> {limit})"


def memory_trends(samples: Sequence[Sample], warmup_minutes: float) -> list[Trend]:
    """RSS slope per process in MB/min after the warm-up, with a verdict."""
    kept = after_warmup(samples, warmup_minutes)
    trends = []
    for name in PROCESSES:
        points = [(s.minute, s.rss_mb[name]) for s in kept if name in s.rss_mb]
        trend = _trend(name, points, LEVEL_MB_PER_MINUTE, "MB/min")
        if trend is not None:
            trends.append(trend)
    return trends


def lag_trends(samples: Sequence[Sample], warmup_minutes: float, rate: float) -> list[Trend]:
    """Lag slope per consumer group in messages/min after the warm-up, with a verdict."""
    tolerance = max(1.0, LAG_SHARE_PER_MINUTE * rate * 60)
    kept = after_warmup(samples, warmup_minutes)
    trends = []
    for name in GROUPS:
        points = [(s.minute, float(s.lag[name])) for s in kept if name in s.lag]
        trend = _trend(name, points, round(tolerance), "messages/min")
        if trend is not None:
            trends.append(trend)
    return trends


def lag_grew(report: SoakReport) -> bool:
    """Whether any group's lag kept growing after the warm-up."""
    return any(t.verdict.startswith("still growing") for t in report.lag)


def _number(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:+.{digits}f}"


def sample_rows(report: SoakReport) -> tuple[list[str], list[list[str]]]:
    """The per-sample table: header and rows (RSS in MB)."""
    processes = [p for p in PROCESSES if any(p in s.rss_mb for s in report.samples)]
    header = [
        "min",
        "produced",
        "applied",
        "emails",
        *(f"lag {g}" for g in GROUPS),
        "outbox",
        *(f"RSS {p} MB" for p in processes),
        "load",
    ]
    rows = []
    for s in report.samples:
        rows.append(
            [
                f"{s.minute:.1f}",
                f"{s.produced:,}",
                f"{s.applied:,}",
                f"{s.emails:,}",
                *(f"{s.lag.get(g, 0):,}" for g in GROUPS),
                f"{s.outbox:,}",
                *(f"{s.rss_mb[p]:.0f}" if p in s.rss_mb else "-" for p in processes),
                f"{s.load:.1f}",
            ]
        )
    return header, rows


def trend_rows(trends: Sequence[Trend], digits: int) -> list[list[str]]:
    """One row per trend: name, first, last, slope, second-half slope, verdict."""
    return [
        [
            t.name,
            f"{t.first:,.{digits}f}",
            f"{t.last:,.{digits}f}",
            _number(t.slope),
            _number(t.late_slope),
            t.verdict,
        ]
        for t in trends
    ]


def summary_lines(report: SoakReport) -> list[str]:
    """The conclusions in plain sentences."""
    lines = [
        f"rate {report.rate:.0f} messages/s ({report.rate_source}) for {report.minutes:g} min; "
        f"slopes after a {report.warmup_minutes:g}-minute warm-up",
    ]
    grew = [t.name for t in report.lag if t.verdict.startswith("still growing")]
    lines.append(
        "lag grew for: " + ", ".join(grew) if grew else "lag did not grow in any consumer group"
    )
    growing = [t.name for t in report.memory if t.verdict.startswith("still growing")]
    lines.append(
        "memory still growing at the end: " + ", ".join(growing)
        if growing
        else "memory of every process was flat or levelled off"
    )
    if report.drain_seconds is None:
        lines.append("did not drain: " + _lag_text(report.final_lag, report.final_outbox))
    else:
        lines.append(
            f"drained in {report.drain_seconds:.1f} s after the load stopped "
            f"({_lag_text(report.final_lag, report.final_outbox)})"
        )
    if report.final_applied is not None:
        produced = sum(report.counts.values())
        lines.append(
            f"{produced:,} messages produced; the worker finished {report.final_applied:,} "
            f"(every outcome) and the notifier sent {report.final_emails or 0:,} emails"
        )
    left = [name for name, gone in report.stopped.items() if not gone]
    lines.append(
        "processes still running: " + ", ".join(left)
        if left
        else "every process the soak started is gone"
    )
    lines.append(
        f"load average {report.load_start:.1f} at the start, {report.load_end:.1f} at the end"
    )
    return lines


def _lag_text(lag: dict[str, int], outbox: int | None) -> str:
    parts = [f"lag {name} {value}" for name, value in lag.items()]
    if outbox is not None:
        parts.append(f"outbox {outbox}")
    return ", ".join(parts)


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    rule = ["---", *("---:" for _ in header[1:])]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    out.extend("| " + " | ".join(row) + " |" for row in rows)
    return out


def markdown(report: SoakReport) -> str:
    """The section for docs/BENCHMARKS.md."""
    header, rows = sample_rows(report)
    produced = ", ".join(f"{kind} {count:,}" for kind, count in sorted(report.counts.items()))
    lines = [
        "```",
        report.command,
        "```",
        "",
        f"Machine: {report.machine}.",
        "",
        f"Messages produced: {produced}." if produced else "",
        "",
        *_markdown_table(header, rows),
        "",
        "Memory (RSS, MB; slope in MB/min after the warm-up, and over its second half):",
        "",
        *_markdown_table(
            ["process", "first", "last", "slope", "second half", "verdict"],
            trend_rows(report.memory, 0),
        ),
        "",
        "Consumer lag (messages; slope in messages/min):",
        "",
        *_markdown_table(
            ["group", "first", "last", "slope", "second half", "verdict"],
            trend_rows(report.lag, 0),
        ),
        "",
        *(f"- {line}" for line in summary_lines(report)),
    ]
    return "\n".join(lines) + "\n"


def to_json(report: SoakReport) -> str:
    """The report for machines: samples, trends and the summary."""
    body: dict[str, Any] = asdict(report)
    body["memory"] = [asdict(t) for t in report.memory]
    body["lag"] = [asdict(t) for t in report.lag]
    body["lag_grew"] = lag_grew(report)
    body["summary"] = summary_lines(report)
    return json.dumps(body, indent=2)
