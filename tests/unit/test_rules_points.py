"""Points: lots, expiry, spending order, adjustments and their refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.unit.factories import T0, apply, joined, kinds, later, make_program, msg, order


def adjust(delta: int, at: datetime = T0, **data: object):
    return msg("points.adjust", {"delta": delta, **data}, at=at)


def test_positive_adjustment_adds_a_lot_counts_as_earned_and_sends_no_email() -> None:
    state = joined()
    decision = apply(state, adjust(200, internal_note="slow shipping", customer_note="Sorry!"))
    assert decision.state is not None
    assert decision.state.points_balance == 200
    assert decision.state.points_earned == 200
    assert "notification.requested" not in kinds(decision)
    [entry] = decision.activity
    assert (entry.kind, entry.delta, entry.internal_note, entry.customer_note) == (
        "points_adjusted",
        200,
        "slow shipping",
        "Sorry!",
    )


def test_adjustment_with_expiry_in_months_dates_the_lot() -> None:
    state = joined(adjust(50, expires_in_months=1, at=datetime(2025, 1, 31, tzinfo=UTC)))
    [lot] = state.points_lots
    # 31 January + 1 month clamps to 28 February; the points last that whole day.
    assert lot.expires_at == datetime(2025, 3, 1, tzinfo=UTC)


def test_negative_adjustment_larger_than_balance_is_refused_naming_balance_and_delta() -> None:
    state = joined(adjust(40))
    decision = apply(state, adjust(-100))
    assert decision.rejection is not None
    assert decision.rejection.code == "insufficient_points"
    assert "40" in decision.rejection.reason
    assert "-100" in decision.rejection.reason
    assert decision.state is not None
    assert decision.state.points_balance == 40


@pytest.mark.parametrize(
    ("lots", "deduct", "left"),
    [
        # (delta, expires_in_months) in order of arrival -> remaining amounts in that order
        ([(100, None), (100, 6), (100, 1)], 150, [100, 50, 0]),
        ([(100, None), (100, 6)], 120, [80, 0]),
        ([(100, 3), (100, 3)], 150, [0, 50]),  # same expiry: the older lot first
        ([(100, None), (100, None)], 50, [150]),  # points that never expire share one lot
    ],
)
def test_spending_consumes_soonest_expiring_lots_first_and_never_expiring_last(
    lots, deduct, left
) -> None:
    messages = [
        adjust(delta, at=later(n), expires_in_months=months)
        for n, (delta, months) in enumerate(lots)
    ]
    state = joined(*messages)
    ids = [lot.lot_id for lot in sorted(state.points_lots, key=lambda lot: lot.earned_at)]
    decision = apply(state, adjust(-deduct, at=later(10)))
    assert decision.state is not None
    remaining = {lot.lot_id: lot.amount for lot in decision.state.points_lots}
    assert [remaining.get(lot_id, 0) for lot_id in ids] == left


def test_negative_adjustment_reduces_points_earned() -> None:
    state = joined(adjust(100), adjust(-30))
    assert (state.points_balance, state.points_earned) == (70, 70)


def test_scheduled_expiry_removes_due_lots_but_not_points_earned() -> None:
    state = joined(adjust(100, expires_in_months=1), adjust(20))
    decision = apply(state, msg("points.expire", {"due_at": later(32).isoformat()}, at=later(32)))
    assert decision.state is not None
    assert decision.state.points_balance == 20
    assert decision.state.points_earned == 120
    assert [a.kind for a in decision.activity] == ["points_expired"]
    assert decision.activity[0].delta == -100


def test_expiry_before_due_time_changes_nothing() -> None:
    state = joined(adjust(100, expires_in_months=1))
    decision = apply(state, msg("points.expire", {"due_at": later(10).isoformat()}, at=later(10)))
    assert decision.state is not None
    assert decision.state.points_balance == 100


def test_due_points_expire_before_a_later_message_can_spend_them() -> None:
    state = joined(adjust(300, expires_in_months=1))
    decision = apply(state, msg("reward.redeem", {"reward_id": "tote-bag"}, at=later(40)))
    assert decision.rejection is not None
    assert decision.rejection.code == "insufficient_points"
    assert decision.state is not None
    assert decision.state.points_balance == 0
    # the scheduler's event, arriving later, finds nothing left and logs nothing
    late = apply(
        decision.state, msg("points.expire", {"due_at": later(32).isoformat()}, at=later(41))
    )
    assert late.activity == ()
    assert late.state is not None
    assert late.state.points_balance == 0


def test_expiry_activity_id_is_the_same_whoever_notices_it() -> None:
    state = joined(adjust(100, expires_in_months=1))
    by_event = apply(state, msg("points.expire", {"due_at": later(32).isoformat()}, at=later(32)))
    lazily = apply(state, adjust(5, at=later(40)))
    assert by_event.activity[0].activity_id == lazily.activity[0].activity_id


def test_adjustment_crossing_a_threshold_grants_entry_rewards_without_email() -> None:
    decision = apply(joined(), adjust(600))
    assert decision.state is not None
    assert decision.state.tier == "Silver"
    assert kinds(decision) == ["reward.granted", "tier.changed"]
    assert decision.outputs[1].data.entry_rewards_granted == (decision.outputs[0].id,)


def test_negative_adjustment_that_loses_a_tier_never_revokes_rewards() -> None:
    state = joined(adjust(600), adjust(-200))
    assert state.tier == "Bronze"
    assert [(g.reward_id, g.status) for g in state.rewards] == [("welcome-silver", "issued")]


def test_imported_points_crossing_a_threshold_change_the_tier_without_entry_rewards() -> None:
    decision = apply(
        joined(),
        msg("points.adjust", {"delta": 600}, source="import", batch={"id": "b7", "row": 2}),
    )
    assert decision.state.tier == "Silver"
    assert kinds(decision) == ["tier.changed"]
    assert decision.state.rewards == ()


def test_expiry_noticed_by_an_adjustment_still_emails_like_the_scheduled_event() -> None:
    program = make_program(emails={"points_expired": True})
    state = joined(adjust(100, expires_in_months=1), program=program)
    by_event = apply(
        state, msg("points.expire", {"due_at": later(32).isoformat()}, at=later(32)), program
    )
    lazily = apply(state, adjust(5, at=later(40)), program)
    assert [o.id for o in by_event.outputs] == [o.id for o in lazily.outputs]
    assert kinds(lazily) == ["notification.requested"]


def test_points_expiring_on_the_same_day_share_one_lot() -> None:
    program = make_program(earn={"points_per_currency_unit": 1, "points_expire_after_months": 12})
    state = joined(
        order("o1", "10.00"),
        order("o2", "20.00", at=later(0, hours=5)),
        order("o3", "30.00", at=later(1)),
        program=program,
    )
    assert [(lot.amount, lot.original) for lot in state.points_lots] == [(30, 30), (30, 30)]
    first = state.points_lots[0]
    assert (first.cause.type, first.expires_at) == ("order.paid", datetime(2026, 3, 2, tzinfo=UTC))
    refund = msg("order.refunded", {"order_id": "o2", "refund_id": "r2"}, at=later(2))
    decision = apply(state, refund, program)
    # o2's points come back out of the lot they went into, before the later-expiring one.
    assert [lot.amount for lot in decision.state.points_lots] == [10, 30]
