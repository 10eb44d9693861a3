"""A reward used on an order comes back when that order no longer stands (issue 12, item 1)."""

from __future__ import annotations

from tests.unit.factories import T0, apply, joined, kinds, later, make_program, msg, order

MEMBERSHIP = make_program(membership_period={"months": 12})


def refund(order_id: str, refund_id: str, at=T0, **data: object):
    return msg("order.refunded", {"order_id": order_id, "refund_id": refund_id, **data}, at=at)


def cancel(order_id: str, at=T0):
    return msg("order.cancelled", {"order_id": order_id}, at=at)


def redeemed():
    """A customer with 600 points who bought a tote bag and used its code on order o2."""
    state = joined(order("o1", "600.00"), msg("reward.redeem", {"reward_id": "tote-bag"}))
    tote = next(g for g in state.rewards if g.reward_id == "tote-bag")
    state = apply(state, order("o2", "30.00", reward_codes=[tote.code], at=later(1))).state
    return state, tote


def test_cancelling_the_order_a_reward_was_used_on_gives_it_back_with_its_code() -> None:
    state, tote = redeemed()
    assert state.grant(tote.grant_id).status == "used"
    decision = apply(state, cancel("o2", at=later(2)))
    back = decision.state.grant(tote.grant_id)
    assert (back.status, back.code, back.used_on_order) == ("issued", tote.code, None)
    [output] = [o for o in decision.outputs if o.type == "reward.reinstated"]
    assert (output.data.grant_id, output.data.code, output.data.order_id) == (
        tote.grant_id,
        tote.code,
        "o2",
    )
    [entry] = [a for a in decision.activity if a.kind == "reward_reinstated"]
    assert "o2" in entry.details["reason"]
    # the same code works again on the next order
    again = apply(decision.state, order("o3", "10.00", reward_codes=[tote.code], at=later(3)))
    assert again.state.grant(tote.grant_id).used_on_order == "o3"


def test_a_full_refund_gives_it_back_and_a_partial_refund_does_not() -> None:
    state, tote = redeemed()
    partial = apply(state, refund("o2", "r1", amount="10.00", at=later(2)))
    assert partial.state.grant(tote.grant_id).status == "used"
    assert "reward.reinstated" not in kinds(partial)
    rest = apply(partial.state, refund("o2", "r2", amount="20.00", at=later(3)))
    assert rest.state.order("o2").fully_reversed
    assert rest.state.grant(tote.grant_id).status == "issued"
    assert kinds(rest).count("reward.reinstated") == 1
    # cancelling what is already refunded in full gives nothing back twice
    late = apply(rest.state, cancel("o2", at=later(4)))
    assert "reward.reinstated" not in kinds(late)


def test_a_replayed_cancellation_reinstates_nothing_twice() -> None:
    state, _tote = redeemed()
    message = cancel("o2", at=later(2))
    first = apply(state, message)
    replay = apply(first.state, message)
    assert replay.duplicate
    assert replay.outputs == ()
    # the same cancellation under a new message id is a duplicate by order too
    other = apply(first.state, cancel("o2", at=later(2)))
    assert "reward.reinstated" not in kinds(other)


def test_a_reward_used_on_a_cancelled_order_is_reinstated_even_when_used_again_later() -> None:
    # Used on o2, given back, used on o3: cancelling o2 once more changes nothing of o3's use.
    state, tote = redeemed()
    state = apply(state, cancel("o2", at=later(2))).state
    state = apply(state, order("o3", "10.00", reward_codes=[tote.code], at=later(3))).state
    decision = apply(state, refund("o2", "r9", at=later(4)))
    assert decision.rejection is not None  # nothing left to refund
    assert decision.state.grant(tote.grant_id).used_on_order == "o3"


def test_an_entry_reward_whose_own_order_was_cancelled_is_revoked_not_given_back() -> None:
    state = joined(order("o1", "600.00"), program=MEMBERSHIP)
    [welcome] = state.rewards
    state = apply(state, order("o2", "20.00", reward_codes=[welcome.code], at=later(1)), MEMBERSHIP)
    state = state.state
    # the order that reached Silver falls while its reward is used: the reward stays used
    fell = apply(state, cancel("o1", at=later(2)), MEMBERSHIP)
    assert fell.state.tier == "Bronze"
    assert fell.state.grant(welcome.grant_id).status == "used"
    [kept] = [a for a in fell.activity if a.kind == "entry_reward_kept"]
    assert "revoked, not given back" in kept.details["reason"]
    # then the order it was used on falls too: revoked, not reinstated
    decision = apply(fell.state, cancel("o2", at=later(3)), MEMBERSHIP)
    assert decision.state.grant(welcome.grant_id).status == "revoked"
    assert "reward.reinstated" not in kinds(decision)
    assert "reward.revoked" in kinds(decision)
    [revoked] = [a for a in decision.activity if a.kind == "reward_revoked"]
    assert "o1" in revoked.details["reason"]
    assert "o2" in revoked.details["reason"]
    # Silver's entry rewards can come again with a real new entry
    assert "Silver" not in decision.state.entry_rewards_received


def test_an_entry_reward_whose_order_stands_is_given_back() -> None:
    state = joined(order("o1", "600.00"), program=MEMBERSHIP)
    [welcome] = state.rewards
    state = apply(
        state, order("o2", "20.00", reward_codes=[welcome.code], at=later(1)), MEMBERSHIP
    ).state
    decision = apply(state, cancel("o2", at=later(2)), MEMBERSHIP)
    assert decision.state.grant(welcome.grant_id).status == "issued"
    assert decision.state.tier == "Silver"


def test_a_stamp_card_reward_comes_back_too() -> None:
    state = joined(msg("stamps.adjust", {"delta": 5}))
    [card] = state.rewards
    state = apply(state, order("o1", "3.00", reward_codes=[card.code], at=later(1))).state
    decision = apply(state, refund("o1", "r1", at=later(2)))
    assert decision.state.grant(card.grant_id).status == "issued"
    assert kinds(decision).count("reward.reinstated") == 1
