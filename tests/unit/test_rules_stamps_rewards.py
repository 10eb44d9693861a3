"""Stamps and rewards: adjustments, stamp cards, redemption, revocation, grant ids."""

from __future__ import annotations

import pytest

from tests.unit.factories import PROGRAM, apply, coffee, joined, kinds, make_program, msg, order


def stamps(delta: int, **data: object):
    return msg("stamps.adjust", {"delta": delta, **data})


def redeem(reward_id: str, **envelope: object):
    return msg("reward.redeem", {"reward_id": reward_id}, **envelope)


def test_stamps_adjust_up_and_down_with_default_customer_note() -> None:
    state = joined(stamps(4, internal_note="goodwill"))
    decision = apply(state, stamps(-3))
    assert decision.state.stamps_balance == 1
    entry = decision.activity[0]
    assert (entry.kind, entry.delta, entry.customer_note) == (
        "stamps_adjusted",
        -3,
        "Manual adjustment",
    )
    assert "notification.requested" not in kinds(decision)


def test_stamps_over_deduction_is_refused_naming_the_balance() -> None:
    decision = apply(joined(stamps(2)), stamps(-24))
    assert decision.rejection.code == "insufficient_stamps"
    assert "balance is 2" in decision.rejection.reason
    assert decision.state.stamps_balance == 2


@pytest.mark.parametrize(
    ("added", "cards", "balance"),
    [(4, 0, 4), (5, 1, 0), (7, 1, 2), (11, 2, 1)],
)
def test_a_full_stamp_card_spends_its_stamps_and_grants_once(added, cards, balance) -> None:
    decision = apply(joined(), stamps(added))
    state = decision.state
    assert (state.stamp_cards_completed, state.stamps_balance) == (cards, balance)
    grants = [o for o in decision.outputs if o.type == "reward.granted"]
    assert [g.data.reward_id for g in grants] == ["free-coffee"] * cards
    assert all(g.data.reason == "stamp_card" for g in grants)
    assert len({g.id for g in grants}) == cards


def test_one_big_order_completes_two_cards_each_logged_with_its_grant() -> None:
    decision = apply(joined(), order("o1", "50.00", [coffee(11)]))
    state = decision.state
    assert (state.stamp_cards_completed, state.stamps_balance) == (2, 1)
    cards = [e for e in decision.activity if e.kind == "stamp_card_completed"]
    assert [(e.details["card"], e.delta, e.details["balance_after"]) for e in cards] == [
        (1, -5, 6),
        (2, -5, 1),
    ]
    assert [e.details["grant_id"] for e in cards] == [g.grant_id for g in state.rewards]
    assert [g.status for g in state.rewards] == ["issued", "issued"]


def test_the_card_reward_cannot_be_bought_again_with_the_same_stamps() -> None:
    state = joined(stamps(5))
    assert state.stamps_balance == 0
    decision = apply(state, redeem("free-coffee"))
    assert decision.rejection.code == "reward_not_redeemable"
    assert [g.reward_id for g in decision.state.rewards] == ["free-coffee"]


def test_stamps_below_a_full_card_buy_a_catalog_reward_from_the_same_pool() -> None:
    state = joined(stamps(4), redeem("cookie"), stamps(3))
    assert (state.stamps_balance, state.stamp_cards_completed) == (4, 0)
    state = joined(stamps(4), redeem("cookie"), stamps(4))
    assert (state.stamps_balance, state.stamp_cards_completed) == (0, 1)


def test_refund_after_card_completion_records_the_shortfall_and_keeps_the_reward() -> None:
    state = joined(order("o1", "30.00", [coffee(6)]))
    assert (state.stamps_balance, state.stamp_cards_completed) == (1, 1)
    decision = apply(state, msg("order.refunded", {"order_id": "o1", "refund_id": "r1"}))
    [entry] = [e for e in decision.activity if e.kind == "order_refunded"]
    assert (entry.details["stamps_reversed"], entry.details["stamps_shortfall"]) == (6, 5)
    assert decision.state.stamps_balance == 0
    assert [g.status for g in decision.state.rewards] == ["issued"]
    assert "reward.revoked" not in kinds(decision)


def test_stamps_adjustment_over_the_balance_left_after_a_card_is_refused() -> None:
    state = joined(stamps(7))
    decision = apply(state, stamps(-3))
    assert decision.rejection.code == "insufficient_stamps"
    assert "balance is 2" in decision.rejection.reason
    assert decision.state.stamps_balance == 2
    assert apply(state, stamps(-2)).state.stamps_balance == 0


def test_card_is_filled_by_order_stamps_too() -> None:
    state = joined(order("o1", "20.00", [coffee(5)]))
    assert (state.stamp_cards_completed, state.stamps_balance) == (1, 0)


def test_without_a_card_stamps_only_accumulate() -> None:
    program = make_program(stamps={"mode": "per_order", "stamps_per_order": 2})
    state = joined(order("o1", "20.00"), stamps(9), program=program)
    assert (state.stamps_balance, state.stamp_cards_completed, state.rewards) == (11, 0, ())


@pytest.mark.parametrize(
    ("setup", "reward", "points", "stamp_count"),
    [
        ([msg("points.adjust", {"delta": 350})], "tote-bag", 50, 0),
        ([stamps(4)], "cookie", 0, 1),
    ],
)
def test_redeem_spends_points_or_stamps(setup, reward, points, stamp_count) -> None:
    decision = apply(joined(*setup), redeem(reward))
    assert decision.rejection is None
    assert (decision.state.points_balance, decision.state.stamps_balance) == (points, stamp_count)
    assert {"reward.redeemed", "reward.granted"} <= set(kinds(decision))
    [grant] = [g for g in decision.state.rewards if g.origin == "redemption"]
    assert (grant.reward_id, grant.status) == (reward, "issued")


def test_redeem_does_not_reduce_points_earned() -> None:
    state = joined(msg("points.adjust", {"delta": 600}), redeem("tote-bag"))
    assert (state.points_balance, state.points_earned, state.tier) == (300, 600, "Silver")


@pytest.mark.parametrize(
    ("setup", "reward", "code", "words"),
    [
        ([msg("points.adjust", {"delta": 299})], "tote-bag", "insufficient_points", ["300", "299"]),
        ([stamps(2)], "cookie", "insufficient_stamps", ["3", "2"]),
        ([], "yacht", "unknown_reward", ["tote-bag"]),
        ([], "welcome-gold", "reward_not_redeemable", ["welcome-gold"]),
        ([], "free-coffee", "reward_not_redeemable", ["free-coffee"]),
    ],
)
def test_redeem_refusals_name_balance_and_cost(setup, reward, code, words) -> None:
    decision = apply(joined(*setup), redeem(reward))
    assert decision.rejection.code == code
    assert all(word in decision.rejection.reason for word in words)
    assert decision.outputs == ()


def test_revoke_removes_an_issued_unused_grant_once() -> None:
    state = joined(stamps(5))
    [grant] = state.rewards
    decision = apply(state, msg("reward.revoke", {"grant_id": grant.grant_id}))
    assert kinds(decision) == ["reward.revoked"]
    assert decision.state.grant(grant.grant_id).status == "revoked"
    again = apply(decision.state, msg("reward.revoke", {"grant_id": grant.grant_id}))
    assert again.rejection.code == "grant_not_revocable"


def test_revoking_a_redeemed_reward_gives_back_what_was_spent() -> None:
    state = joined(msg("points.adjust", {"delta": 300}), redeem("tote-bag"))
    [grant] = [g for g in state.rewards if g.origin == "redemption"]
    decision = apply(state, msg("reward.revoke", {"grant_id": grant.grant_id}))
    assert decision.state.points_balance == 300
    assert decision.state.points_earned == 300  # given back, not earned again


def test_revoking_a_stamp_redemption_returns_the_stamps_and_fills_a_full_card() -> None:
    state = joined(stamps(4), redeem("cookie"), stamps(3))
    [grant] = [g for g in state.rewards if g.origin == "redemption"]
    decision = apply(state, msg("reward.revoke", {"grant_id": grant.grant_id}))
    assert (decision.state.stamps_balance, decision.state.stamp_cards_completed) == (2, 1)
    assert kinds(decision)[0] == "reward.revoked"
    assert "reward.granted" in kinds(decision)


def test_revoke_of_an_unknown_grant_is_refused() -> None:
    decision = apply(joined(), msg("reward.revoke", {"grant_id": "nope"}))
    assert decision.rejection.code == "unknown_grant"


def test_grant_ids_are_deterministic_from_the_cause() -> None:
    message = redeem("tote-bag", id="redeem-42")
    state = joined(msg("points.adjust", {"delta": 300}))
    first = apply(state, message)
    second = apply(state, message, make_program())
    assert [o.id for o in first.outputs] == [o.id for o in second.outputs]
    assert first.state.rewards[-1].grant_id.startswith("redeem-42:")
    assert PROGRAM.version == make_program().version
