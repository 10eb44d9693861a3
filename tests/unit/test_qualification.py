"""Qualification metrics are counters: no rule reads the order history, buckets stay bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from models.state import CustomerState
from tests.unit.factories import T0, apply, joined, later, make_program, msg, order

SPEND_TIERS = [
    {"name": "Bronze", "rank": 0, "threshold": 0},
    {"name": "Silver", "rank": 1, "metric": "amount_spent", "threshold": 100},
    {"name": "Gold", "rank": 2, "metric": "orders", "threshold": 5},
]
SPEND = make_program(tiers=SPEND_TIERS, qualification_period={"rolling_months": 12})


def archived(state: CustomerState, *keep: str) -> CustomerState:
    """The state as the store hands it over: old order records archived, ``keep`` loaded back."""
    return state.model_copy(update={"orders": tuple(o for o in state.orders if o.order_id in keep)})


def test_tiers_count_orders_whose_records_were_archived() -> None:
    state = joined(
        order("o1", "40.00"),
        order("o2", "40.00", at=later(1)),
        order("o3", "10.00", at=later(2)),
        program=SPEND,
    )
    assert state.tier == "Bronze"
    decision = apply(archived(state), order("o4", "15.00", at=later(3)), SPEND)
    assert decision.state.tier == "Silver"
    decision = apply(archived(decision.state), order("o5", "1.00", at=later(4)), SPEND)
    assert decision.state.tier == "Gold"  # five orders, four of them archived
    assert (decision.state.order_count, decision.state.lifetime_spend) == (5, Decimal("106.00"))


def test_cancelling_an_order_loaded_back_from_the_archive_lowers_the_metrics() -> None:
    state = joined(
        *(order(f"o{n}", "30.00", at=later(n)) for n in range(5)),
        program=SPEND,
    )
    assert state.tier == "Gold"
    cancel = msg("order.cancelled", {"order_id": "o2"}, at=later(10))
    decision = apply(archived(state, "o2"), cancel, SPEND)
    assert decision.state.tier == "Silver"  # 4 orders, 120.00 spent
    assert (decision.state.order_count, decision.state.lifetime_spend) == (4, Decimal("120.00"))


def test_rolling_period_keeps_at_most_one_bucket_per_day_of_the_period() -> None:
    program = make_program(qualification_period={"rolling_months": 2})
    state = joined(program=program)
    for n in range(200):
        at = T0 + timedelta(hours=12 * n)  # two orders a day for 100 days
        state = apply(state, order(f"o{n}", "1.00", at=at), program).state
    periods = state.qualifying.periods
    assert len(periods) <= 63  # about two months of days, not 200 orders
    assert periods[0].start > (T0 + timedelta(days=30)).date()
    assert state.qualifying.window.orders == sum(bucket.orders for bucket in periods)
    assert all(bucket.orders <= 2 for bucket in periods)
    assert state.qualifying.total.orders == 200


def test_calendar_year_keeps_one_bucket_and_settles_it_on_january_first() -> None:
    program = make_program(qualification_period="calendar_year")
    state = joined(order("o1", "300.00"), order("o2", "300.00", at=later(100)), program=program)
    assert [b.start.isoformat() for b in state.qualifying.periods] == ["2025-01-01"]
    assert state.tier == "Silver"
    new_year = datetime(2026, 1, 1, tzinfo=UTC)
    decision = apply(state, order("o3", "1.00", at=new_year), program)
    assert decision.state.tier == "Bronze"  # 2025 left the period before the order counted
    assert [b.start.isoformat() for b in decision.state.qualifying.periods] == ["2026-01-01"]
    assert decision.state.qualifying.window.points_earned == 1


def test_activity_counts_until_the_end_of_the_same_date_months_later() -> None:
    program = make_program(qualification_period={"rolling_months": 1})
    late_evening = datetime(2025, 1, 31, 23, 0, tzinfo=UTC)
    state = joined(order("o1", "600.00", at=late_evening), program=program)
    # 31 January + 1 month clamps to 28 February; the order counts through that whole day.
    assert state.next_due_at == datetime(2025, 3, 1, tzinfo=UTC)
    before = apply(state, order("o2", "1.00", at=datetime(2025, 2, 28, 23, 59, tzinfo=UTC)))
    assert before.state.tier == "Silver"


def test_a_refund_of_an_order_whose_period_has_passed_changes_only_lifetime_figures() -> None:
    program = make_program(qualification_period={"rolling_months": 1})
    state = joined(order("o1", "600.00"), order("o2", "600.00", at=later(60)), program=program)
    refund = msg("order.refunded", {"order_id": "o1", "refund_id": "r1"}, at=later(61))
    decision = apply(state, refund, program)
    assert decision.state.tier == "Silver"  # o2 still counts; o1 had left the period
    assert decision.state.points_earned == 600
    assert decision.state.qualifying.window.points_earned == 600


def test_spent_and_expired_lots_are_dropped_and_the_balance_is_kept_beside_them() -> None:
    program = make_program(earn={"points_per_currency_unit": 1, "points_expire_after_months": 1})
    state = joined(order("o1", "300.00"), order("o2", "50.00", at=later(20)), program=program)
    spent = apply(state, msg("reward.redeem", {"reward_id": "tote-bag"}, at=later(21)), program)
    [left] = spent.state.points_lots  # o1's lot expires first: it paid the 300 and is gone
    assert (left.amount, spent.state.points_balance) == (50, 50)
    expired = apply(spent.state, order("o3", "1.00", at=later(60)), program)
    assert [lot.amount for lot in expired.state.points_lots] == [1]
    assert expired.state.points_balance == 1
