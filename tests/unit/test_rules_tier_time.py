"""Tiers and time: activity leaving the qualification period drops the tier on a time event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.rules.periods import add_months
from tests.unit.factories import T0, apply, joined, later, make_program, msg, order, run, upsert

ROLLING = make_program(qualification_period={"rolling_months": 12})


def rolling_end(moment: datetime, months: int = 12) -> datetime:
    """Activity counts until the end of the same date ``months`` later (UTC days)."""
    day = add_months(moment, months).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


CALENDAR = make_program(qualification_period="calendar_year")


def time_event(due: datetime, at: datetime | None = None, kind: str = "tier.expire"):
    return msg(kind, {"due_at": due.isoformat()}, at=at or due, source="system")


def tier_changes(decision):
    return [o.data for o in decision.outputs if o.type == "tier.changed"]


@pytest.mark.parametrize(
    ("program", "due"),
    [
        (ROLLING, rolling_end(T0)),
        (CALENDAR, datetime(2026, 1, 1, tzinfo=UTC)),
    ],
    ids=["rolling", "calendar_year"],
)
def test_tier_drops_when_its_activity_leaves_the_period(program, due) -> None:
    state = joined(order("o1", "600.00"), program=program)
    assert (state.tier, state.next_due_at) == ("Silver", due)
    decision = apply(state, time_event(due), program)
    [change] = tier_changes(decision)
    assert (change.from_tier, change.to_tier, change.direction) == ("Silver", "Bronze", "down")
    assert change.cause.type == "tier.expire"
    assert decision.state.tier == "Bronze"
    assert decision.state.next_due_at is None  # the base tier cannot drop


def test_lifetime_period_needs_no_review() -> None:
    state = joined(order("o1", "600.00"))
    assert (state.tier, state.tier_review_at, state.next_due_at) == ("Silver", None, None)


def test_review_is_due_when_the_metric_would_fall_below_the_threshold() -> None:
    state = joined(order("o1", "100.00"), order("o2", "600.00", at=later(100)), program=ROLLING)
    first, second = rolling_end(T0), rolling_end(later(100))
    # o1 leaving first still leaves 600 points, above Silver's 500: no review is due then.
    assert (state.tier, state.next_due_at) == ("Silver", second)
    early = apply(state, time_event(first), ROLLING)  # an early time event changes nothing
    assert (early.state.tier, tier_changes(early)) == ("Silver", [])
    assert early.state.next_due_at == second
    decision = apply(early.state, time_event(second), ROLLING)
    assert [c.to_tier for c in tier_changes(decision)] == ["Bronze"]


def test_new_orders_put_the_review_later_and_a_refund_brings_it_forward() -> None:
    state = joined(order("o1", "600.00"), program=ROLLING)
    assert state.next_due_at == rolling_end(T0)
    state = apply(state, order("o2", "600.00", at=later(30)), ROLLING).state
    # Kept (at worst early): the review then finds Silver still held by o2 and moves on.
    review = apply(state, time_event(rolling_end(T0)), ROLLING)
    assert (review.state.tier, review.state.next_due_at) == ("Silver", rolling_end(later(30)))
    refund = msg("order.refunded", {"order_id": "o2", "refund_id": "r2"}, at=later(31))
    refunded = apply(state, refund, ROLLING)
    assert (refunded.state.tier, refunded.state.next_due_at) == ("Silver", rolling_end(T0))


def test_a_later_message_applies_the_drop_with_the_scheduled_event_ids() -> None:
    state = joined(order("o1", "600.00"), program=ROLLING)
    due = state.next_due_at
    scheduled = apply(state, time_event(due), ROLLING)
    late = apply(state, order("o2", "1.00", at=later(500)), ROLLING)
    [expected] = [o for o in scheduled.outputs if o.type == "tier.changed"]
    [noticed] = [o for o in late.outputs if o.type == "tier.changed"]
    assert (noticed.id, noticed.data) == (expected.id, expected.data)
    assert late.state.tier == "Bronze"


def test_several_due_reviews_settle_in_time_order() -> None:
    tiers = [
        {"name": "Bronze", "rank": 0, "threshold": 0},
        {"name": "Silver", "rank": 1, "threshold": 500},
        {"name": "Gold", "rank": 2, "threshold": 1500},
    ]
    program = make_program(qualification_period={"rolling_months": 12}, tiers=tiers)
    state = joined(order("o1", "1000.00"), order("o2", "600.00", at=later(60)), program=program)
    assert state.tier == "Gold"
    decision = apply(state, time_event(later(900)), program)
    changes = [(c.from_tier, c.to_tier) for c in tier_changes(decision)]
    assert changes == [("Gold", "Silver"), ("Silver", "Bronze")]
    assert [a.at for a in decision.activity if a.kind == "tier_changed"] == [
        rolling_end(T0),
        rolling_end(later(60)),
    ]


def test_membership_hold_delays_the_drop_until_it_ends() -> None:
    program = make_program(
        qualification_period={"rolling_months": 6}, membership_period={"months": 12}
    )
    state = joined(order("o1", "600.00"), program=program)
    hold_end = add_months(T0, 12)
    assert (state.tier, state.tier_review_at, state.next_due_at) == ("Silver", None, hold_end)
    early = apply(state, time_event(add_months(T0, 7)), program)
    assert (early.state.tier, tier_changes(early)) == ("Silver", [])
    decision = apply(early.state, time_event(hold_end), program)
    assert [(c.to_tier, c.direction) for c in tier_changes(decision)] == [("Bronze", "down")]


def test_spend_metric_is_reviewed_too_and_refunded_orders_are_not() -> None:
    tiers = [
        {"name": "Bronze", "rank": 0, "threshold": 0},
        {"name": "Silver", "rank": 1, "metric": "amount_spent", "threshold": 100},
    ]
    program = make_program(qualification_period={"rolling_months": 12}, tiers=tiers)
    state, _ = run(
        upsert(),
        order("o1", "80.00"),
        order("o2", "50.00", at=later(10)),
        msg("order.cancelled", {"order_id": "o1"}, at=later(20)),
        order("o3", "60.00", at=later(30)),
        program=program,
    )
    assert state is not None
    assert (state.tier, state.next_due_at) == ("Silver", rolling_end(later(10)))
