"""Pure parts of the consumers: envelope decoding, retry policy, coupon answers, summaries."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consumers.analytics import TierChangeLog, read_lines, summarize, tier_change_line
from consumers.app import CONSUMER_NAMES, parse_only
from consumers.loop import EnvelopeError, RetryPolicy, decode_envelope
from consumers.rewards import judge
from web_access import ExposureError, check_exposure

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (None, "tombstone"),
        (b"\xff", "UTF-8 JSON"),
        (b"[1]", "JSON object"),
        (b'{"id": "", "type": "t", "customer_id": "c"}', "'id'"),
        (b'{"id": "1", "type": "t", "customer_id": "c", "data": 3}', "'data'"),
    ],
)
def test_bad_envelopes_say_what_is_wrong(raw: bytes | None, problem: str) -> None:
    with pytest.raises(EnvelopeError, match=problem):
        decode_envelope(raw)


def test_retry_delays_grow_exponentially_with_jitter_and_stay_under_the_cap() -> None:
    policy = RetryPolicy(max_attempts=8, base=0.5, cap=4.0, rng=random.Random(7))
    delays = [policy.delay(attempt) for attempt in range(1, 9)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 4.0


def _coupon(**fields: object) -> dict[str, object]:
    return {"code": "ABC", "customer_id": "c1", "reward_id": "r", "status": "issued", **fields}


def test_coupon_answers() -> None:
    assert judge("X", None, NOW).status == "unknown"
    assert judge("ABC", _coupon(), NOW).reason == "valid, no expiry"
    later = NOW + timedelta(days=3)
    assert judge("ABC", _coupon(valid_until=later), NOW).status == "valid"
    expired = judge("ABC", _coupon(valid_until=NOW - timedelta(seconds=1)), NOW)
    assert expired.status == "expired"
    used = judge("ABC", _coupon(status="used", used_at=NOW, order_id="o-9"), NOW)
    assert used.status == "used"
    assert "o-9" in used.reason
    # A used or revoked code stays so even after its expiry date.
    assert (
        judge("ABC", _coupon(status="revoked", valid_until=NOW - timedelta(1)), NOW).status
        == "revoked"
    )
    naive = judge("ABC", _coupon(valid_until=datetime(2026, 12, 1)), NOW)
    assert naive.status == "expired"
    assert judge("ABC", _coupon(), NOW).as_json()["valid"] is True


def test_only_picks_consumers_and_refuses_unknown_names() -> None:
    assert parse_only(None) == CONSUMER_NAMES
    assert parse_only("notifier, rewards,notifier") == ("notifier", "rewards")
    with pytest.raises(ValueError, match="choose from rewards, notifier, analytics"):
        parse_only("emails")


def test_no_coupon_answers_beyond_loopback_without_a_token() -> None:
    check_exposure("127.0.0.1", None)
    check_exposure("0.0.0.0", "token")
    with pytest.raises(ExposureError, match="LOYALTY_API_TOKEN"):
        check_exposure("0.0.0.0", None)


def _change(n: int, customer: str, to: str, direction: str, day: str, cause: str) -> dict:
    return {
        "id": f"m{n}",
        "type": "tier.changed",
        "customer_id": customer,
        "occurred_at": f"{day}T10:00:0{n}+00:00",
        "data": {
            "from_tier": None,
            "to_tier": to,
            "direction": direction,
            "cause": {"type": cause, "id": f"x{n}"},
            "program_version": "v1",
            "notified": True,
        },
    }


def test_tier_change_log_appends_once_per_id_and_survives_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "changes.jsonl"
    log = TierChangeLog(path)
    log.load()
    rows = [tier_change_line(_change(1, "a", "Silver", "up", "2026-12-01", "order.paid"))]
    log.append(rows)
    log.append(rows)
    with path.open("a") as handle:
        handle.write('{"id": "torn"')  # a crash in the middle of a write
    reopened = TierChangeLog(path)
    reopened.load()
    reopened.append([tier_change_line(_change(2, "b", "Gold", "up", "2026-12-02", "tier.change"))])
    assert [row["id"] for row in read_lines(path)] == ["m1", "m2"]


def test_summary_counts_per_day_direction_cause_and_current_tier() -> None:
    messages = [
        _change(1, "a", "Silver", "up", "2026-12-01", "order.paid"),
        _change(2, "b", "Gold", "up", "2026-12-01", "tier.change"),
        _change(3, "a", "Gold", "up", "2026-12-02", "order.paid"),
        _change(4, "b", "Silver", "down", "2026-12-02", "tier.expire"),
        _change(4, "b", "Silver", "down", "2026-12-02", "tier.expire"),  # a repeat
    ]
    summary = summarize(iter(json.loads(json.dumps([tier_change_line(m) for m in messages]))))
    assert summary.as_json() == {
        "changes": 4,
        "per_day": {"2026-12-01": 2, "2026-12-02": 2},
        "per_direction": {"down": 1, "up": 3},
        "per_cause": {"order.paid": 2, "tier.change": 1, "tier.expire": 1},
        "members_per_tier": {"Gold": 1, "Silver": 1},
    }
