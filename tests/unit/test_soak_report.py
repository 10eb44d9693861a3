"""The pure parts of ``loyalty bench soak``: slopes, verdicts, the printed forms and the load."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.soak_load import READY_SECONDS, MixedLoad
from cli.soak_report import (
    LEVEL_MB_PER_MINUTE,
    Sample,
    SoakReport,
    after_warmup,
    lag_grew,
    lag_trends,
    markdown,
    memory_trends,
    slope,
    summary_lines,
    to_json,
    verdict,
)
from topics import names
from topics.codec import parse_message


def _sample(minute: float, *, worker_mb: float, lag: int = 0, kafka_mb: float = 500) -> Sample:
    return Sample(
        minute=minute,
        produced=int(minute * 10_000),
        applied=int(minute * 9_900),
        emails=int(minute * 500),
        lag={"worker": lag, "rewards": 0, "notifier": 0},
        rss_mb={"worker": worker_mb, "kafka": kafka_mb},
        outbox=3,
        load=1.5,
    )


def _report(samples: list[Sample], **extra: object) -> SoakReport:
    report = SoakReport(
        command="loyalty bench soak --minutes 30",
        machine="test machine",
        rate=167,
        rate_source="half of 334",
        minutes=30,
        warmup_minutes=5,
        samples=samples,
        drain_seconds=4.2,
        final_lag={"worker": 0, "rewards": 0, "notifier": 0},
        final_outbox=0,
        stopped={"worker": True, "consumers": True, "smtp": True},
        counts={"order.paid": 100, "customer.upserted": 10},
    )
    for key, value in extra.items():
        setattr(report, key, value)
    return report


def test_slope_is_the_least_squares_fit() -> None:
    assert slope([(0, 1), (1, 3), (2, 5)]) == pytest.approx(2.0)
    # Noise around a line of slope 0.5: the fit recovers it.
    assert slope([(0, 0.1), (1, 0.4), (2, 1.1), (3, 1.4)]) == pytest.approx(0.46)
    assert slope([(0, 7), (10, 7)]) == 0


def test_slope_needs_two_distinct_x() -> None:
    assert slope([]) is None
    assert slope([(1, 5)]) is None
    assert slope([(1, 5), (1, 9)]) is None


@given(
    st.floats(-100, 100),
    st.floats(-1000, 1000),
    st.lists(st.floats(0, 60), min_size=2, max_size=30, unique=True),
)
def test_slope_of_points_on_a_line_is_that_line(k: float, b: float, xs: list[float]) -> None:
    if max(xs) - min(xs) < 1e-3:
        return
    fitted = slope([(x, k * x + b) for x in xs])
    assert fitted == pytest.approx(k, abs=1e-6)


def test_verdicts() -> None:
    assert verdict(None, None, 0.1, "MB/min") == "too few samples"
    assert verdict(0.05, 0.0, 0.1, "MB/min").startswith("flat")
    assert verdict(-0.05, 0.0, 0.1, "MB/min").startswith("flat")
    assert verdict(-2.0, -1.0, 0.1, "MB/min") == "falling"
    assert verdict(2.0, 0.05, 0.1, "MB/min").startswith("levelled off")
    assert verdict(2.0, 0.5, 0.1, "MB/min").startswith("still growing")
    assert verdict(2.0, None, 0.1, "MB/min").startswith("still growing")


def test_warm_up_samples_are_left_out() -> None:
    samples = [_sample(m, worker_mb=100 + 50 * (m < 5)) for m in range(0, 11)]
    assert [s.minute for s in after_warmup(samples, 5)] == [5, 6, 7, 8, 9, 10]
    worker = memory_trends(samples, 5)[0]
    assert worker.name == "worker"
    assert worker.first == 100
    assert worker.slope == 0
    assert worker.verdict.startswith("flat")


def test_memory_that_grows_then_levels_off_and_memory_that_keeps_growing() -> None:
    levelling = [
        _sample(m, worker_mb=100 + 4 * min(m, 10), kafka_mb=400 + 2 * m) for m in range(21)
    ]
    trends = {t.name: t for t in memory_trends(levelling, 0)}
    assert trends["worker"].verdict.startswith("levelled off")
    assert trends["worker"].late_slope == pytest.approx(0)
    assert trends["kafka"].verdict.startswith("still growing")
    assert trends["kafka"].slope == pytest.approx(2)
    assert set(trends) == {"worker", "kafka"}, "processes never sampled are left out"


def test_a_process_gone_in_some_samples_is_fitted_on_the_others() -> None:
    samples = [_sample(m, worker_mb=100 + m) for m in range(6)]
    del samples[2].rss_mb["worker"]
    worker = memory_trends(samples, 0)[0]
    assert worker.slope == pytest.approx(1)


def test_too_few_samples_after_the_warm_up_say_so() -> None:
    samples = [_sample(m, worker_mb=100) for m in range(7)]
    trend = memory_trends(samples, 5)[0]
    assert trend.slope is None
    assert trend.verdict == "too few samples (2)"


def test_lag_tolerance_scales_with_the_rate() -> None:
    # 167 messages/s: lag growing by 50 messages a minute is within 1% of 10,020 a minute.
    slow_growth = [_sample(m, worker_mb=100, lag=50 * m) for m in range(10)]
    assert lag_trends(slow_growth, 0, 167)[0].verdict.startswith("flat")
    assert lag_trends(slow_growth, 0, 10)[0].verdict.startswith("still growing")
    assert not lag_grew(_report(slow_growth))
    fast_growth = [_sample(m, worker_mb=100, lag=1000 * m) for m in range(10)]
    assert lag_grew(_report(fast_growth))


def test_summary_names_what_grew_and_how_it_ended() -> None:
    growing = [_sample(m, worker_mb=100 + 3 * m, lag=1000 * m) for m in range(10)]
    report = _report(growing, warmup_minutes=0, drain_seconds=None, final_lag={"worker": 9000})
    report.stopped["worker"] = False
    text = "\n".join(summary_lines(report))
    assert "lag grew for: worker" in text
    assert "memory still growing at the end: worker" in text
    assert "did not drain: lag worker 9000, outbox 0" in text
    assert "processes still running: worker" in text
    calm = "\n".join(summary_lines(_report([_sample(m, worker_mb=100) for m in range(10)])))
    assert "lag did not grow in any consumer group" in calm
    assert "memory of every process was flat or levelled off" in calm
    assert "drained in 4.2 s" in calm
    assert "every process the soak started is gone" in calm


def test_markdown_has_one_row_per_sample_and_the_trend_tables() -> None:
    samples = [_sample(m, worker_mb=100 + m) for m in range(12)]
    text = markdown(_report(samples))
    assert text.startswith("```\nloyalty bench soak --minutes 30\n```\n")
    table = [line for line in text.splitlines() if line.startswith("| ")]
    header = table[0]
    assert "lag worker" in header
    assert "RSS worker MB" in header
    assert "RSS kafka MB" in header
    assert "RSS mongodb MB" not in header, "a process never sampled gets no column"
    assert sum(1 for line in table if line.startswith(("| 0.0 ", "| 11.0 "))) == 2
    assert "| worker | 105 | 111 | +1.00 | +1.00 | still growing (> 0.1 MB/min) |" in text
    assert "Messages produced: customer.upserted 10, order.paid 100." in text
    flat = markdown(_report([_sample(m, worker_mb=100) for m in range(12)]))
    assert "flat (within ±0.1 MB/min)" in flat
    for block in (text, flat):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        widths = {line.count("|") for line in rows if "verdict" in line or "| worker " in line}
        assert len(widths) == 1, "no cell holds a '|' that would split it"


def test_json_carries_samples_trends_and_summary() -> None:
    body = json.loads(to_json(_report([_sample(m, worker_mb=100) for m in range(8)])))
    assert len(body["samples"]) == 8
    assert body["samples"][0]["rss_mb"] == {"worker": 100, "kafka": 500}
    assert {t["name"] for t in body["memory"]} == {"worker", "kafka"}
    assert body["lag_grew"] is False
    assert body["summary"][0].startswith("rate 167 messages/s (half of 334)")
    assert LEVEL_MB_PER_MINUTE == 0.1


def _messages(count: int, *, per_second: float = 200) -> list[tuple[str, dict[str, object]]]:
    load = MixedLoad("t1", "EUR", active=50)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return [load.next(n / per_second, at) for n in range(count)]


def test_the_load_is_valid_contract_messages_on_their_topics() -> None:
    topics = {
        "customer.upserted": names.CUSTOMERS,
        "order.paid": names.ORDERS,
        "order.refunded": names.ORDERS,
        "points.adjust": names.ADJUSTMENTS,
        "stamps.adjust": names.ADJUSTMENTS,
        "reward.redeem": names.ADJUSTMENTS,
    }
    messages = _messages(5000)
    kinds = Counter(str(envelope["type"]) for _, envelope in messages)
    assert set(kinds) == set(topics), "every kind of message appears"
    assert kinds["order.paid"] > kinds["order.refunded"] > 0
    for topic, envelope in messages:
        assert topics[str(envelope["type"])] == topic
        parse_message(envelope)  # raises on anything the contract refuses
    ids = [envelope["id"] for _, envelope in messages]
    assert len(ids) == len(set(ids)), "message ids are unique"


def test_the_load_is_seeded() -> None:
    assert _messages(500) == _messages(500)


def test_a_customer_gets_messages_only_after_its_sign_up_settled() -> None:
    signed_up: dict[str, float] = {}
    load = MixedLoad("t2", "EUR", active=20)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(3000):
        now = n / 100
        _, envelope = load.next(now, at)
        customer = str(envelope["customer_id"])
        if envelope["type"] == "customer.upserted":
            signed_up[customer] = now
        else:
            assert now - signed_up[customer] >= READY_SECONDS


def test_refunds_never_exceed_what_was_paid() -> None:
    paid: dict[str, Decimal] = {}
    refunded: Counter[str] = Counter()
    for _, envelope in _messages(8000):
        data = envelope["data"]
        assert isinstance(data, dict)
        if envelope["type"] == "order.paid":
            paid[data["order_id"]] = Decimal(data["total"])
        elif envelope["type"] == "order.refunded":
            refunded[data["order_id"]] += Decimal(data["amount"])  # type: ignore[assignment]
    assert refunded
    for order_id, amount in refunded.items():
        assert amount <= paid[order_id]


def test_customers_retire_and_new_ones_sign_up() -> None:
    messages = _messages(6000)
    signups = sum(1 for _, e in messages if e["type"] == "customer.upserted")
    assert signups > 50 * 2, "more customers than the active set over the run"
    orders: Counter[str] = Counter(
        str(e["customer_id"]) for _, e in messages if e["type"] == "order.paid"
    )
    assert max(orders.values()) <= 16
