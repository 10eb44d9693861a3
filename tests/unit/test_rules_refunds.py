"""Refunds and cancellations reverse exactly what the order earned, and what it triggered."""

from __future__ import annotations

from decimal import Decimal

import pytest

from models.state import CustomerState
from tests.unit.factories import (
    T0,
    apply,
    coffee,
    joined,
    kinds,
    later,
    make_program,
    msg,
    order,
)
from topics.codec import MessageError, parse_message

MEMBERSHIP = make_program(membership_period={"months": 12})
TRIAL = make_program(
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


def refund(order_id: str, refund_id: str, at=T0, **data: object):
    return msg("order.refunded", {"order_id": order_id, "refund_id": refund_id, **data}, at=at)


def cancel(order_id: str, at=T0):
    return msg("order.cancelled", {"order_id": order_id}, at=at)


def item(sku: str, price: str, quantity: int = 1) -> dict[str, object]:
    return {"sku": sku, "quantity": quantity, "unit_price": price}


def statuses(state: CustomerState) -> list[tuple[str, str]]:
    return [(g.reward_id, g.status) for g in state.rewards]


def tier_changes(decision):
    return [o.data for o in decision.outputs if o.type == "tier.changed"]


# --- what the items earned ------------------------------------------------------------


def test_refunding_an_item_that_earned_no_stamps_reverses_no_stamps() -> None:
    state = joined(order("o1", "20.00", [coffee(2, "4.00"), item("mug", "12.00")]))
    assert (state.stamps_balance, state.points_balance) == (2, 20)
    decision = apply(state, refund("o1", "r1", items=[{"sku": "mug", "quantity": 1}]))
    assert decision.state.stamps_balance == 2
    assert decision.state.points_balance == 8
    assert decision.activity[0].details["stamps_reversed"] == 0


def test_item_refund_of_a_discounted_order_reverses_the_items_share_after_the_discount() -> None:
    # items worth 100, paid 80: a 20 order discount spread over both items by price
    state = joined(order("o1", "80.00", [item("shirt", "50.00"), item("cap", "50.00")]))
    decision = apply(state, refund("o1", "r1", items=[{"sku": "shirt", "quantity": 1}]))
    record = decision.state.order("o1")
    assert record.refunded_amount == Decimal("40.00")
    assert decision.state.points_balance == 40
    assert decision.state.lifetime_spend == Decimal("40.00")
    assert decision.activity[0].details["amount"] == "40.00"


def test_refunding_one_item_of_a_deeply_discounted_order_does_not_refund_it_in_full() -> None:
    state = joined(order("o1", "40.00", [item("shirt", "50.00"), item("cap", "50.00")]))
    decision = apply(state, refund("o1", "r1", items=[{"sku": "shirt", "quantity": 1}]))
    state = decision.state
    assert not state.order("o1").fully_reversed
    assert state.order_count == 1
    assert (state.points_balance, state.lifetime_spend) == (20, Decimal("20.00"))
    # the other item can still be refunded, and then everything is
    rest = apply(state, refund("o1", "r2", items=[{"sku": "cap", "quantity": 1}]))
    assert rest.rejection is None
    assert rest.state.order("o1").fully_reversed
    assert (rest.state.points_balance, rest.state.lifetime_spend) == (0, 0)


def test_item_refunds_in_thirds_add_up_to_exactly_the_whole_order() -> None:
    items = [item("a", "100.00"), item("b", "100.00"), item("c", "100.00")]
    state = joined(order("o1", "100.00", items))
    for n, sku in enumerate("abc"):
        state = apply(state, refund("o1", f"r{n}", items=[{"sku": sku, "quantity": 1}])).state
        assert state.order("o1").fully_reversed == (sku == "c")
    assert (state.points_balance, state.points_earned, state.lifetime_spend) == (0, 0, 0)
    assert state.order("o1").refunded_amount == Decimal("100.00")


def test_items_beside_unstated_shipping_keep_their_own_price() -> None:
    # items 90 of a 100 total: the other 10 belongs to no item (shipping, tax)
    state = joined(order("o1", "100.00", [item("shirt", "90.00")]))
    decision = apply(state, refund("o1", "r1", items=[{"sku": "shirt", "quantity": 1}]))
    assert decision.state.order("o1").refunded_amount == Decimal("90.00")
    assert decision.state.points_balance == 10
    assert decision.state.order_count == 1


# --- what the order triggered ---------------------------------------------------------


def test_cancelling_the_order_that_reached_a_tier_takes_it_back_despite_the_membership() -> None:
    state = joined(order("o1", "600.00"), program=MEMBERSHIP)
    assert (state.tier, state.tier_held) == ("Silver", True)
    decision = apply(state, cancel("o1", at=later(3)), MEMBERSHIP)
    [change] = tier_changes(decision)
    assert (change.from_tier, change.to_tier, change.direction) == ("Silver", "Bronze", "down")
    assert decision.state.tier == "Bronze"
    assert statuses(decision.state) == [("welcome-silver", "revoked")]
    assert "reward.revoked" in kinds(decision)
    [revoked] = [a for a in decision.activity if a.kind == "reward_revoked"]
    assert "o1" in revoked.details["reason"]


def test_refund_in_full_takes_back_the_tier_and_its_unused_entry_rewards() -> None:
    state = joined(order("o1", "2000.00"), program=MEMBERSHIP)
    assert state.tier == "Gold"
    decision = apply(state, refund("o1", "r1"), MEMBERSHIP)
    assert decision.state.tier == "Bronze"
    assert statuses(decision.state) == [("welcome-gold", "revoked")]


def test_a_used_entry_reward_stays_used_and_the_activity_says_so() -> None:
    state = joined(order("o1", "600.00"), program=MEMBERSHIP)
    used = tuple(g.model_copy(update={"status": "used"}) for g in state.rewards)
    state = state.model_copy(update={"rewards": used})
    decision = apply(state, cancel("o1"), MEMBERSHIP)
    assert statuses(decision.state) == [("welcome-silver", "used")]
    assert "reward.revoked" not in kinds(decision)
    [kept] = [a for a in decision.activity if a.kind == "entry_reward_kept"]
    assert kept.details["status"] == "used"
    assert "already used" in kept.details["reason"]


def test_cancelling_the_order_takes_back_the_trial_tier_its_automation_granted() -> None:
    state = joined(order("o1", "10.00", extended_fields={"channel": "events"}), program=TRIAL)
    assert (state.tier, state.tier_source) == ("Gold", "temporary")
    decision = apply(state, cancel("o1", at=later(1)), TRIAL)
    assert (decision.state.tier, decision.state.tier_expires_at) == ("Bronze", None)
    assert statuses(decision.state) == [("welcome-gold", "revoked")]
    assert decision.state.next_due_at is None


def test_a_partial_refund_re_evaluates_the_tier_with_what_remains() -> None:
    state = joined(order("o1", "600.00"), program=MEMBERSHIP)
    decision = apply(state, refund("o1", "r1", amount="200.00"), MEMBERSHIP)
    [change] = tier_changes(decision)
    assert (change.to_tier, change.direction) == ("Bronze", "down")
    assert statuses(decision.state) == [("welcome-silver", "issued")]  # only a full reversal
    kept = apply(state, refund("o1", "r2", amount="50.00"), MEMBERSHIP)
    assert (kept.state.tier, tier_changes(kept)) == ("Silver", [])


def test_reversal_returns_to_a_manual_tier_whose_hold_still_runs() -> None:
    state = joined(
        msg("tier.change", {"tier": "Silver"}),
        order("o1", "1500.00", at=later(1)),
        program=MEMBERSHIP,
    )
    assert state.tier == "Gold"
    decision = apply(state, cancel("o1", at=later(2)), MEMBERSHIP)
    after = decision.state
    assert (after.tier, after.tier_source, after.tier_held) == ("Silver", "manual", True)
    assert after.tier_hold_until == state.order("o1").triggers.tier_before.tier_hold_until
    assert statuses(after) == [("welcome-silver", "issued"), ("welcome-gold", "revoked")]


def test_a_later_manual_move_stands_when_the_order_is_cancelled() -> None:
    state = joined(
        order("o1", "600.00"), msg("tier.change", {"tier": "Gold"}, at=later(1)), program=MEMBERSHIP
    )
    decision = apply(state, cancel("o1", at=later(2)), MEMBERSHIP)
    assert decision.state.tier == "Gold"
    assert tier_changes(decision) == []
    assert ("welcome-silver", "issued") in statuses(decision.state)  # Gold is above Silver


def test_other_purchases_that_still_reach_the_tier_keep_it_and_its_reward() -> None:
    state = joined(order("o1", "600.00"), order("o2", "400.00", at=later(1)))
    decision = apply(state, cancel("o1", at=later(2)))
    assert decision.state.tier == "Silver"
    assert statuses(decision.state) == [("welcome-silver", "issued")]


def test_the_order_record_says_what_it_triggered() -> None:
    state = joined(order("o1", "600.00"), program=MEMBERSHIP)
    triggers = state.order("o1").triggers
    assert (triggers.tier_before.tier, triggers.tier_reached, triggers.tier_after) == (
        "Bronze",
        "Silver",
        "Silver",
    )
    assert [ref.grant_id for ref in triggers.entry_grants] == [state.rewards[0].grant_id]
    assert joined(order("o1", "10.00")).order("o1").triggers is None


def test_reversal_needs_no_other_order_record() -> None:
    # the store may archive older orders: only the referenced record is loaded
    state = joined(order("o0", "100.00"), order("o1", "600.00", at=later(1)), program=MEMBERSHIP)
    hydrated = state.model_copy(update={"orders": (state.order("o1"),)})
    decision = apply(hydrated, cancel("o1", at=later(2)), MEMBERSHIP)
    assert decision.state.tier == "Bronze"
    assert statuses(decision.state) == [("welcome-silver", "revoked")]


def test_stated_shipping_and_tax_belong_to_no_item_and_shape_the_discount() -> None:
    # items worth 100, shipping 10, paid 100: the items were paid 90 (a 10 discount)
    items = [item("shirt", "50.00"), item("cap", "50.00")]
    state = joined(order("o1", "100.00", items, shipping="10.00"))
    assert state.points_balance == 90  # shipping earns no points
    decision = apply(
        state,
        refund("o1", "r1", items=[{"sku": "shirt", "quantity": 1}, {"sku": "cap", "quantity": 1}]),
    )
    record = decision.state.order("o1")
    assert record.refunded_amount == Decimal("90.00")
    assert not record.fully_reversed  # the shipping still stands
    assert decision.state.points_balance == 0  # the items earned every point


def test_shipping_and_tax_above_the_total_are_refused_at_parse_time() -> None:
    body = {
        "id": "m-x",
        "type": "order.paid",
        "customer_id": "c-1",
        "occurred_at": T0.isoformat(),
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


def test_a_partial_refund_leaves_the_trial_tier_its_automation_granted() -> None:
    state = joined(order("o1", "10.00", extended_fields={"channel": "events"}), program=TRIAL)
    decision = apply(state, refund("o1", "r1", amount="4.00", at=later(1)), TRIAL)
    assert (decision.state.tier, decision.state.tier_source) == ("Gold", "temporary")
    assert tier_changes(decision) == []
    assert statuses(decision.state) == [("welcome-gold", "issued")]


def test_a_cancellation_requests_one_email_not_one_per_revoked_reward() -> None:
    loud = make_program(
        membership_period={"months": 12}, emails={"tier_downgraded": True, "reward_revoked": True}
    )
    state = joined(order("o1", "600.00"), program=loud)
    decision = apply(state, cancel("o1", at=later(1)), loud)
    emails = [o.data.kind for o in decision.outputs if o.type == "notification.requested"]
    assert emails == ["tier_downgraded"]
    assert "reward.revoked" in kinds(decision)


def test_orders_returned_one_after_the_other_leave_no_tier_and_no_reward_behind() -> None:
    # o0 reached Silver, o1 went on to Gold; o0 is returned first (Gold still stands on o1),
    # then o1: the Silver held underneath was bought and returned too
    state = joined(order("o0", "600.00"), order("o1", "1000.00", at=later(1)), program=MEMBERSHIP)
    assert state.tier == "Gold"
    first = apply(state, cancel("o0", at=later(2)), MEMBERSHIP)
    assert first.state.tier == "Gold"
    assert statuses(first.state) == [("welcome-silver", "issued"), ("welcome-gold", "issued")]
    second = apply(first.state, cancel("o1", at=later(3)), MEMBERSHIP)
    assert second.state.tier == "Bronze"
    assert statuses(second.state) == [("welcome-silver", "revoked"), ("welcome-gold", "revoked")]
    assert second.state.entry_grants_unbacked == ()
    [silver] = [a for a in second.activity if a.details.get("reward_id") == "welcome-silver"]
    assert "o0" in silver.details["reason"]


def test_a_membership_hold_on_activity_that_was_returned_does_not_keep_the_tier() -> None:
    # Gold was reached by an adjustment on top of o0; returning o0 leaves 1000 points: Silver
    state = joined(
        order("o0", "600.00"),
        msg("points.adjust", {"delta": 1000}, at=later(1)),
        program=MEMBERSHIP,
    )
    assert (state.tier, state.tier_held) == ("Gold", True)
    decision = apply(state, cancel("o0", at=later(2)), MEMBERSHIP)
    assert decision.state.tier == "Silver"
    assert [(c.from_tier, c.to_tier) for c in tier_changes(decision)] == [("Gold", "Silver")]


def test_a_hold_over_activity_that_only_left_the_period_still_bridges_it() -> None:
    rolling = make_program(
        membership_period={"months": 12}, qualification_period={"rolling_months": 6}
    )
    state = joined(order("o0", "600.00"), order("o1", "10.00", at=later(200)), program=rolling)
    assert (state.tier, state.tier_held) == ("Silver", True)  # o0 left the period; held
    decision = apply(state, refund("o1", "r1", at=later(201)), rolling)
    assert decision.state.tier == "Silver"
    assert tier_changes(decision) == []
