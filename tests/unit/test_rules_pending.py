"""Pending points: spendable only after the return window, confirmed by a time event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from models.decide import Decision
from tests.unit.factories import T0, apply, joined, later, make_program, msg, order

PENDING = make_program(
    earn={
        "points_per_currency_unit": 1,
        "points_pending_days": 14,
        "points_expire_after_months": 12,
    }
)


def confirm(at, id: str | None = None):
    return msg("points.confirm", {"due_at": at.isoformat()}, at=at, source="system", id=id)


def refund(order_id: str, refund_id: str, at=T0, **data: object):
    return msg("order.refunded", {"order_id": order_id, "refund_id": refund_id, **data}, at=at)


def test_order_points_are_pending_then_confirmed_by_the_time_event() -> None:
    state = joined(order("o1", "400.00"), program=PENDING)
    assert (state.points_balance, state.points_pending) == (0, 400)
    assert state.public_view()["points_pending"] == 400
    due = T0 + timedelta(days=14)
    assert state.next_due_at == due
    decision = apply(state, confirm(due, id="time:c-1:points.confirm"), PENDING)
    state = decision.state
    assert (state.points_balance, state.points_pending) == (400, 0)
    [entry] = [a for a in decision.activity if a.kind == "points_confirmed"]
    assert entry.at == due
    # validity starts at the confirmation, to the end of that day a year later
    [lot] = state.points_lots
    assert lot.expires_at == datetime(due.year + 1, due.month, due.day + 1, tzinfo=UTC)
    assert state.next_due_at == lot.expires_at
    # the scheduler's event again: a duplicate; under another id: nothing left to do
    assert apply(state, confirm(due, id="time:c-1:points.confirm"), PENDING).duplicate
    again = apply(state, confirm(due), PENDING)
    assert again.state.points_balance == 400
    assert not [a for a in again.activity if a.kind == "points_confirmed"]


def test_pending_points_cannot_be_spent() -> None:
    state = joined(order("o1", "400.00"), program=PENDING)
    decision = apply(state, msg("reward.redeem", {"reward_id": "tote-bag"}), PENDING)
    assert decision.rejection.code == "insufficient_points"
    assert "balance is 0" in decision.rejection.reason


def test_a_later_message_confirms_them_first_with_the_same_ids() -> None:
    state = joined(order("o1", "400.00"), program=PENDING)
    due = T0 + timedelta(days=14)
    by_event = apply(state, confirm(due), PENDING)
    by_redeem = apply(state, msg("reward.redeem", {"reward_id": "tote-bag"}, at=later(20)), PENDING)
    assert by_redeem.rejection is None
    assert by_redeem.state.points_balance == 100
    confirmed = [a for a in by_redeem.activity if a.kind == "points_confirmed"]
    assert [a.activity_id for a in confirmed] == [
        a.activity_id for a in by_event.activity if a.kind == "points_confirmed"
    ]


def test_pending_points_count_toward_tiers_from_the_payment() -> None:
    state = joined(order("o1", "600.00"), program=PENDING)
    assert state.tier == "Silver"
    assert state.points_earned == 600


def test_a_refund_inside_the_window_removes_pending_points_first() -> None:
    state = joined(msg("points.adjust", {"delta": 50}), order("o1", "400.00"), program=PENDING)
    decision = apply(state, refund("o1", "r1", amount="100.00", at=later(3)), PENDING)
    state = decision.state
    assert (state.points_balance, state.points_pending) == (50, 300)
    assert decision.activity[0].details["points_pending_removed"] == 100
    assert state.points_earned == 350
    # the rest is confirmed at the end of the window
    confirmed = apply(state, confirm(T0 + timedelta(days=14)), PENDING).state
    assert (confirmed.points_balance, confirmed.points_pending) == (350, 0)


def test_a_cancellation_inside_the_window_removes_them_all_and_nothing_is_due() -> None:
    state = joined(order("o1", "400.00"), program=PENDING)
    decision: Decision = apply(state, msg("order.cancelled", {"order_id": "o1"}), PENDING)
    assert (decision.state.points_balance, decision.state.points_pending) == (0, 0)
    assert decision.state.points_pending_lots == ()
    assert decision.state.next_due_at is None


def test_a_refund_after_the_window_takes_from_the_balance() -> None:
    state = joined(order("o1", "400.00"), program=PENDING)
    decision = apply(state, refund("o1", "r1", at=later(30)), PENDING)
    assert (decision.state.points_balance, decision.state.points_pending) == (0, 0)
    [refunded] = [a for a in decision.activity if a.kind == "order_refunded"]
    assert refunded.details["points_pending_removed"] == 0
    assert refunded.delta == -400


def test_without_the_setting_points_are_spendable_at_once() -> None:
    state = joined(order("o1", "400.00"))
    assert (state.points_balance, state.points_pending) == (400, 0)
