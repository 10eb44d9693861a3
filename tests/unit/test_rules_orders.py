"""Orders: earning points and stamps, refunds and cancellations reversing what was earned."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.unit.factories import (
    BASE_PROGRAM,
    apply,
    coffee,
    joined,
    kinds,
    make_program,
    msg,
    order,
    run,
    upsert,
)


def refund(order_id: str, refund_id: str, **data: object):
    return msg("order.refunded", {"order_id": order_id, "refund_id": refund_id, **data})


@pytest.mark.parametrize(
    ("rounding", "rate", "total", "points"),
    [
        ("floor", "1", "129.90", 129),
        ("ceil", "1", "129.10", 130),
        ("half_up", "1", "129.50", 130),
        ("half_even", "1", "128.50", 128),
        ("floor", "0.1", "129.90", 12),
        ("floor", "2", "0.40", 0),
    ],
)
def test_order_earns_points_by_rate_and_rounding(rounding, rate, total, points) -> None:
    program = make_program(earn={"points_per_currency_unit": rate, "rounding": rounding})
    state = joined(order("o1", total), program=program)
    assert state.points_balance == points
    assert state.points_earned == points


def test_order_points_use_the_current_tier_multiplier() -> None:
    state = joined(msg("tier.change", {"tier": "Silver"}), order("o1", "100.00"))
    assert state.points_balance == 150


@pytest.mark.parametrize(
    ("stamps", "items", "total", "earned"),
    [
        ({"mode": "per_order", "stamps_per_order": 2}, [], "10.00", 2),
        ({"mode": "per_order", "min_order_value": "20.00"}, [], "10.00", 0),
        (
            {"mode": "per_qualifying_item", "qualifying_categories": ["coffee"]},
            [coffee(3), {"sku": "mug", "quantity": 1, "unit_price": "9.00"}],
            "21.00",
            3,
        ),
        (
            {"mode": "per_qualifying_item", "qualifying_skus": ["mug"], "stamps_per_item": 2},
            [coffee(3), {"sku": "mug", "quantity": 2, "unit_price": "9.00"}],
            "30.00",
            4,
        ),
        ({"mode": "per_qualifying_item", "min_order_value": "50.00"}, [coffee(3)], "12.00", 0),
    ],
)
def test_order_earns_stamps_per_order_or_per_qualifying_item(stamps, items, total, earned) -> None:
    program = make_program(stamps=stamps)
    state = joined(order("o1", total, items), program=program)
    assert state.stamps_balance == earned


def test_order_activity_says_what_it_earned_and_which_items_earned_stamps() -> None:
    decision = apply(
        joined(),
        order("o1", "20.00", [coffee(2), {"sku": "mug", "quantity": 1, "unit_price": "12.00"}]),
    )
    entry = decision.activity[0]
    assert entry.kind == "order_paid"
    assert entry.details["points"] == 20
    assert entry.details["stamps"] == 2
    assert entry.details["stamp_items"] == [{"sku": "latte", "quantity": 2, "stamps": 2}]


def test_order_updates_spend_and_order_count() -> None:
    state = joined(order("o1", "20.00"), order("o2", "30.50"))
    assert state.lifetime_spend == Decimal("50.50")
    assert state.order_count == 2


def test_same_order_id_under_another_message_id_is_a_no_op() -> None:
    state = joined(order("o1", "20.00"))
    decision = apply(state, order("o1", "20.00"))
    assert decision.duplicate
    assert decision.outputs == ()
    assert decision.state == state


@pytest.mark.parametrize(
    ("refunds", "reversed_points"),
    [
        ([{"amount": "25.00"}], 83),  # floor(333 * 25 / 100)
        ([{"amount": "25.00"}, {"amount": "25.00"}], 166),  # cumulative: floor(333 * 50 / 100)
        ([{"amount": "25.00"}, {"amount": "75.00"}], 333),  # refunds summing to the total: all
        ([{"amount": "60.00"}, {"amount": "60.00"}], 333),  # capped at the order total
        ([{}], 333),  # no amount, no items: the whole order
        ([{"amount": "0.01"}] * 3, 0),
    ],
)
def test_refunds_reverse_points_pro_rata_and_never_more_than_earned(
    refunds, reversed_points
) -> None:
    program = make_program(earn={"points_per_currency_unit": "3.33"})
    state = joined(order("o1", "100.00"), msg("points.adjust", {"delta": 1000}), program=program)
    assert state.points_balance == 1333
    messages = [refund("o1", f"r{n}", **data) for n, data in enumerate(refunds)]
    final, _ = run(*messages, state=state, program=program)
    assert final is not None
    assert final.points_balance == 1333 - reversed_points
    assert final.order("o1").points_reversed == reversed_points


def test_refund_by_items_reverses_the_stamps_of_those_items() -> None:
    state = joined(order("o1", "16.00", [coffee(4)]))
    decision = apply(state, refund("o1", "r1", items=[{"sku": "latte", "quantity": 3}]))
    assert decision.state is not None
    assert decision.state.stamps_balance == 1
    assert decision.state.points_balance == 16 - 12
    again = apply(decision.state, refund("o1", "r2", items=[{"sku": "latte", "quantity": 3}]))
    assert again.state is not None
    assert again.state.stamps_balance == 0
    assert again.state.points_balance == 0


def test_refund_of_an_unknown_item_is_refused_listing_the_items() -> None:
    decision = apply(
        joined(order("o1", "8.00", [coffee(2)])),
        refund("o1", "r1", items=[{"sku": "mug", "quantity": 1}]),
    )
    assert decision.rejection is not None
    assert "latte" in decision.rejection.reason


def test_refund_for_an_unknown_order_is_a_recorded_refusal() -> None:
    decision = apply(joined(), refund("nope", "r1"))
    assert decision.rejection is not None
    assert decision.rejection.code == "unknown_order"
    assert [a.kind for a in decision.activity] == ["rejected"]
    assert decision.state is not None
    assert decision.state.has_applied(decision.activity[0].cause.id)


def test_same_refund_id_twice_is_a_no_op() -> None:
    state = joined(order("o1", "100.00"), refund("o1", "r1", amount="10.00"))
    assert apply(state, refund("o1", "r1", amount="10.00")).duplicate


def test_refund_after_full_reversal_is_refused() -> None:
    state = joined(order("o1", "100.00"), msg("order.cancelled", {"order_id": "o1"}))
    decision = apply(state, refund("o1", "r9", amount="10.00"))
    assert decision.rejection is not None
    assert decision.rejection.code == "nothing_to_refund"


def test_cancel_reverses_what_partial_refunds_left() -> None:
    state = joined(
        order("o1", "100.00", [coffee(4, "25.00")]),
        refund("o1", "r1", amount="50.00"),
        msg("order.cancelled", {"order_id": "o1"}),
    )
    record = state.order("o1")
    assert (state.points_balance, state.stamps_balance, state.lifetime_spend) == (0, 0, 0)
    assert (record.points_reversed, record.stamps_reversed) == (100, 4)
    assert state.order_count == 0
    assert apply(state, msg("order.cancelled", {"order_id": "o1"})).duplicate


def test_reversal_takes_the_balance_only_down_to_zero_and_records_the_shortfall() -> None:
    state = joined(order("o1", "400.00"), msg("reward.redeem", {"reward_id": "tote-bag"}))
    decision = apply(state, refund("o1", "r1"))
    assert decision.state is not None
    assert decision.state.points_balance == 0
    assert decision.state.points_earned == 0
    details = decision.activity[0].details
    assert (details["points_reversed"], details["points_shortfall"]) == (400, 300)


def test_refund_reverses_recorded_values_not_todays_rules() -> None:
    state = joined(order("o1", "100.00", [coffee(2, "50.00")]))
    richer = make_program(
        earn={"points_per_currency_unit": 10},
        stamps={**BASE_PROGRAM["stamps"], "stamps_per_item": 5},
    )
    decision = apply(state, refund("o1", "r1"), program=richer)
    assert decision.state is not None
    assert (decision.state.points_balance, decision.state.stamps_balance) == (0, 0)


def test_refund_re_evaluates_the_tier() -> None:
    state = joined(order("o1", "600.00"))
    assert state.tier == "Silver"
    decision = apply(state, refund("o1", "r1", amount="200.00"))
    assert decision.state is not None
    assert decision.state.tier == "Bronze"
    assert kinds(decision)[-1] == "tier.changed"
    assert decision.outputs[-1].data.direction == "down"
    assert [g.status for g in decision.state.rewards] == ["issued"]  # nothing revoked


def test_order_matching_an_automation_runs_its_manage_tier_action() -> None:
    program = make_program(
        automations=[
            {
                "name": "events",
                "when": [{"field": "extended_fields.channel", "value": "events"}],
                "manage_tier": {
                    "action": "upgrade",
                    "strategy": "specific",
                    "tier": "Gold",
                    "expiry": {"kind": "duration", "days": 90},
                },
            }
        ]
    )
    state, [_, plain, _event] = run(
        upsert(),
        order("o1", "10.00"),
        order("o2", "10.00", extended_fields={"channel": "events"}),
        program=program,
    )
    assert "tier.changed" not in kinds(plain)
    assert state is not None
    assert state.tier == "Gold"
    assert state.tier_source == "temporary"


def test_a_free_order_counts_until_refunded() -> None:
    state = joined(order("o1", "0.00"))
    assert state.order_count == 1
    refunded = apply(state, refund("o1", "r1"))
    assert refunded.state.order_count == 0


def test_refund_of_an_sku_on_two_lines_takes_units_from_each_in_turn() -> None:
    items = [coffee(1, "4.00"), coffee(2, "3.00")]
    state = joined(order("o1", "10.00", items))
    decision = apply(state, refund("o1", "r1", items=[{"sku": "latte", "quantity": 2}]))
    record = decision.state.order("o1")
    assert [line.refunded_quantity for line in record.lines] == [1, 1]
    assert record.refunded_amount == Decimal("7.00")
    assert decision.state.stamps_balance == 1
