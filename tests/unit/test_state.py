"""Customer state: serialisation round trip, derived quantities, the scheduler's next due time."""

from __future__ import annotations

from models.state import CustomerState
from tests.unit.factories import coffee, joined, later, make_program, msg, order


def busy_customer() -> CustomerState:
    return joined(
        order("o.1", "612.35", [coffee(6)]),
        msg("points.adjust", {"delta": 40, "expires_in_months": 2}),
        msg("order.refunded", {"order_id": "o.1", "refund_id": "r1", "amount": "12.35"}),
        msg(
            "tier.manage",
            {
                "action": "upgrade",
                "strategy": "specific",
                "tier": "Gold",
                "expiry": {"kind": "duration", "days": 30},
            },
        ),
    )


def test_state_round_trips_through_json_with_store_fields_beside_it() -> None:
    state = busy_customer()
    document = {**state.model_dump(mode="json"), "_id": "c-1", "outbox": [], "offsets": {}}
    assert isinstance(document["lifetime_spend"], str)
    assert CustomerState.model_validate(document) == state


def test_points_balance_and_points_earned_are_separate_quantities() -> None:
    state = joined(
        msg("points.adjust", {"delta": 400}), msg("reward.redeem", {"reward_id": "tote-bag"})
    )
    assert (state.points_balance, state.points_earned) == (100, 400)


def test_next_due_at_is_the_earliest_lot_expiry_or_tier_end() -> None:
    state = busy_customer()
    assert state.next_due_at == later(30)
    assert joined().next_due_at is None


def test_program_expiry_for_earned_points_dates_order_lots() -> None:
    program = make_program(earn={"points_per_currency_unit": 1, "points_expire_after_months": 24})
    state = joined(order("o1", "10.00"), program=program)
    # 2025-03-01 + 24 months, to the end of that day
    assert state.points_lots[0].expires_at == later(731, hours=-12)
