"""Earning filters for points, shipping and tax, and which tier's multiplier applies."""

from __future__ import annotations

import pytest

from models.program import ProgramError
from tests.unit.factories import BASE_PROGRAM, apply, joined, later, make_program, msg, order
from topics.codec import MessageError, parse_message

FILTERED = make_program(
    earn={
        "points_per_currency_unit": 1,
        "qualifying_categories": ["coffee", "beans"],
        "excluded_skus": ["gift-card"],
        "min_order_value": "10.00",
    }
)


def item(sku: str, price: str, quantity: int = 1, *categories: str) -> dict[str, object]:
    return {"sku": sku, "quantity": quantity, "unit_price": price, "categories": list(categories)}


def refund(order_id: str, refund_id: str, **data: object):
    return msg("order.refunded", {"order_id": order_id, "refund_id": refund_id, **data})


def test_only_qualifying_items_earn_and_excluded_ones_never() -> None:
    items = [
        item("beans-1kg", "30.00", 1, "beans"),
        item("mug", "20.00", 1, "kitchen"),  # not a qualifying category
        item("gift-card", "50.00", 1, "beans"),  # qualifying category, but excluded
    ]
    state = joined(order("o1", "100.00", items), program=FILTERED)
    assert state.points_balance == 30
    [paid] = [
        a
        for a in apply(joined(program=FILTERED), order("o1", "100.00", items), FILTERED).activity
        if a.kind == "order_paid"
    ]
    assert paid.details["items_without_points"] == ["mug", "gift-card"]
    # the spend still counts the whole order
    assert str(state.lifetime_spend) == "100.00"


def test_points_are_earned_on_what_qualifying_items_paid_after_the_order_discount() -> None:
    # items worth 100, paid 80: each item paid 80 % of its price
    items = [item("beans-1kg", "50.00", 1, "beans"), item("mug", "50.00", 1, "kitchen")]
    state = joined(order("o1", "80.00", items), program=FILTERED)
    assert state.points_balance == 40


def test_refunding_an_excluded_item_reverses_nothing_and_a_qualifying_one_its_points() -> None:
    items = [item("beans-1kg", "30.00", 1, "beans"), item("mug", "20.00", 1, "kitchen")]
    state = joined(order("o1", "50.00", items), program=FILTERED)
    mug = apply(state, refund("o1", "r1", items=[{"sku": "mug", "quantity": 1}]), FILTERED)
    assert mug.state.points_balance == 30
    assert mug.activity[0].details["points_reversed"] == 0
    beans = apply(
        mug.state, refund("o1", "r2", items=[{"sku": "beans-1kg", "quantity": 1}]), FILTERED
    )
    assert beans.state.points_balance == 0
    assert beans.state.points_earned == 0


def test_an_order_below_the_minimum_earns_no_points_but_counts() -> None:
    state = joined(order("o1", "9.99", [item("beans", "9.99", 1, "beans")]), program=FILTERED)
    assert state.points_balance == 0
    assert state.order_count == 1


def test_the_minimum_compares_the_order_without_shipping_and_tax() -> None:
    program = make_program(earn={"points_per_currency_unit": 1, "min_order_value": "20.00"})
    short = joined(order("o1", "25.00", shipping="6.00"), program=program)
    assert short.points_balance == 0
    enough = joined(order("o1", "25.00", shipping="5.00"), program=program)
    assert enough.points_balance == 20


def test_shipping_and_tax_earn_no_points() -> None:
    state = joined(order("o1", "121.00", [item("shirt", "100.00")], shipping="10.00", tax="11.00"))
    assert state.points_balance == 100
    # refunding the one item takes back every point it earned; the shipping still stands
    decision = apply(state, refund("o1", "r1", items=[{"sku": "shirt", "quantity": 1}]))
    assert decision.state.points_balance == 0
    assert not decision.state.order("o1").fully_reversed


def test_shipping_and_tax_above_the_total_are_refused_with_a_clear_message() -> None:
    body = {
        "id": "m-1",
        "type": "order.paid",
        "customer_id": "c-1",
        "occurred_at": "2025-03-01T12:00:00Z",
        "data": {
            "order_id": "o1",
            "total": "10.00",
            "currency": "EUR",
            "shipping": "8.00",
            "tax": "3.00",
        },
    }
    with pytest.raises(MessageError, match="shipping and tax are parts of total"):
        parse_message(body)


def test_a_replayed_filtered_order_earns_once() -> None:
    items = [item("beans-1kg", "30.00", 1, "beans")]
    message = order("o1", "30.00", items)
    state = joined(message, program=FILTERED)
    again = apply(state, message, FILTERED)
    assert again.duplicate
    assert again.state.points_balance == 30


@pytest.mark.parametrize(
    ("earn", "path"),
    [
        ({"excluded_skus": "gift-card"}, "earn.excluded_skus"),
        ({"qualifying_categories": [""]}, "earn.qualifying_categories[0]"),
        ({"min_order_value": -1}, "earn.min_order_value"),
        ({"points_pending_days": 0}, "earn.points_pending_days"),
        ({"multiplier_tier": "highest"}, "earn.multiplier_tier"),
    ],
)
def test_bad_earning_settings_name_their_path(earn: dict[str, object], path: str) -> None:
    with pytest.raises(ProgramError) as excinfo:
        make_program(earn={"points_per_currency_unit": 1, **earn})
    assert path in str(excinfo.value)


# --- which tier's multiplier ------------------------------------------------------------


def test_by_default_an_order_earns_at_the_tier_held_before_it() -> None:
    # Bronze (x1) to Silver (x1.5) with one order of 600
    state = joined(order("o1", "600.00"))
    assert (state.tier, state.points_balance) == ("Silver", 600)
    later_order = apply(state, order("o2", "100.00", at=later(1)))
    assert later_order.state.points_balance == 750


def test_with_multiplier_tier_reached_the_order_earns_at_the_tier_it_reaches() -> None:
    program = make_program(earn={"points_per_currency_unit": 1, "multiplier_tier": "reached"})
    decision = apply(joined(program=program), order("o1", "600.00"), program)
    assert (decision.state.tier, decision.state.points_balance) == ("Silver", 900)
    [paid] = [a for a in decision.activity if a.kind == "order_paid"]
    assert paid.details["points_multiplier_tier"] == "Silver"
    # an order that reaches nothing new earns at the tier held
    small = apply(decision.state, order("o2", "10.00", at=later(1)), program)
    assert small.state.points_balance == 915


def test_a_reached_multiplier_is_judged_at_the_held_rate_and_not_looped() -> None:
    # 1000 at x1 reaches Silver (500) but not Gold (1500); at Silver's x1.5 it is 1500, which
    # reaches Gold as well: the customer moves to Gold, the order keeps Silver's rate.
    program = make_program(earn={"points_per_currency_unit": 1, "multiplier_tier": "reached"})
    decision = apply(joined(program=program), order("o1", "1000.00"), program)
    assert decision.state.points_balance == 1500
    assert decision.state.tier == "Gold"


def test_the_base_program_is_unchanged_by_the_new_settings() -> None:
    program = make_program()
    assert program.earn.multiplier_tier == "held"
    assert not program.earn.filters_items
    assert BASE_PROGRAM["earn"] == {"points_per_currency_unit": 1, "rounding": "floor"}


def test_a_replayed_crossing_order_earns_at_the_reached_rate_once() -> None:
    program = make_program(earn={"points_per_currency_unit": 1, "multiplier_tier": "reached"})
    message = order("o1", "600.00")
    first = apply(joined(program=program), message, program)
    again = apply(first.state, message, program)
    assert again.duplicate
    assert again.state.points_balance == 900
    # the same order under a new message id is a duplicate by order id
    resent = apply(first.state, order("o1", "600.00"), program)
    assert resent.duplicate


@pytest.mark.parametrize(
    ("rounding", "points"), [("floor", 28), ("ceil", 29), ("half_up", 29), ("half_even", 28)]
)
def test_a_discounted_share_is_rounded_once_as_the_program_says(rounding: str, points: int):
    # items 30 (beans) + 30 (mug, not qualifying) paid 57: the beans were paid 28.50
    program = make_program(
        earn={
            "points_per_currency_unit": 1,
            "rounding": rounding,
            "qualifying_categories": ["beans"],
        }
    )
    items = [item("beans-1kg", "30.00", 1, "beans"), item("mug", "30.00", 1, "kitchen")]
    decision = apply(joined(program=program), order("o1", "57.00", items), program)
    assert decision.state.points_balance == points
    [paid] = [a for a in decision.activity if a.kind == "order_paid"]
    assert paid.details["points_base"] == "28.5"
