"""What counts toward a tier after manual downgrades, membership holds and temporary tiers."""

from __future__ import annotations

from datetime import datetime

from models.rules.periods import add_months
from tests.unit.factories import (
    BASE_PROGRAM,
    T0,
    apply,
    joined,
    later,
    make_program,
    msg,
    order,
    run,
    upsert,
)

MEMBERSHIP = make_program(membership_period={"months": 12})


def change(tier: str, at: datetime = T0, **data: object):
    return msg("tier.change", {"tier": tier, **data}, at=at)


def temporary(tier: str, days: int, at: datetime, action: str = "upgrade", **data: object):
    body = {
        "action": action,
        "strategy": "specific",
        "tier": tier,
        "expiry": {"kind": "duration", "days": days},
        **data,
    }
    return msg("tier.manage", body, at=at)


def time_event(due: datetime):
    return msg("tier.expire", {"due_at": due.isoformat()}, at=due, source="system")


def changes(decision):
    return [
        (o.data.from_tier, o.data.to_tier, o.data.direction)
        for o in decision.outputs
        if o.type == "tier.changed"
    ]


def entry_grants(decision) -> list[str]:
    return [o.data.reward_id for o in decision.outputs if o.type == "reward.granted"]


def test_the_downgrade_window_outlives_the_next_upgrade_by_the_rules() -> None:
    # The scenario: down from Gold, Silver's threshold bought, then one small order.
    state = joined(order("o1", "2000.00"), change("Bronze", at=later(1)))
    assert state.tier == "Bronze"
    silver = apply(state, order("o2", "500.00", at=later(2)))
    assert changes(silver) == [("Bronze", "Silver", "up")]
    small = apply(silver.state, order("o3", "10.00", at=later(3)))
    assert small.state.tier == "Silver"  # the 2000 before the downgrade still do not count
    assert changes(small) == []
    assert entry_grants(small) == []
    assert small.state.qualify_since == later(1)


def test_the_end_of_a_membership_hold_counts_only_activity_since_the_downgrade() -> None:
    state, _ = run(
        upsert(),
        order("o1", "2000.00"),
        change("Silver", at=later(1)),  # held for the 12-month membership period
        order("o2", "400.00", at=later(2)),  # 600 points at Silver's 1.5: Silver on its own
        program=MEMBERSHIP,
    )
    assert state is not None
    hold_end = add_months(later(1), 12)
    assert (state.tier, state.next_due_at) == ("Silver", hold_end)
    decision = apply(state, time_event(hold_end), MEMBERSHIP)
    assert decision.state.tier == "Silver"  # not Gold again on the 2000 before the downgrade
    assert changes(decision) == []


def test_the_end_of_a_hold_lowers_the_tier_when_what_counts_gives_less() -> None:
    state = joined(order("o1", "2000.00"), change("Silver", at=later(1)), program=MEMBERSHIP)
    decision = apply(state, time_event(add_months(later(1), 12)), MEMBERSHIP)
    assert changes(decision) == [("Silver", "Bronze", "down")]


def test_an_admin_rules_upgrade_counts_all_activity_and_lifts_the_window() -> None:
    state = joined(order("o1", "2000.00"), change("Bronze", at=later(1)))
    rules = msg("tier.manage", {"action": "upgrade", "strategy": "rules"}, at=later(2))
    decision = apply(state, rules)
    assert changes(decision) == [("Bronze", "Gold", "up")]
    assert decision.state.qualify_since is None


def test_a_temporary_tier_ends_on_the_manual_tier_held_underneath() -> None:
    state = joined(change("Silver", entry_rewards=False), temporary("Gold", 30, later(1)))
    assert (state.tier, state.tier_source) == ("Gold", "temporary")
    decision = apply(state, time_event(later(31)))
    assert changes(decision) == [("Gold", "Silver", "expire")]
    assert (decision.state.tier_source, decision.state.tier_held) == ("manual", True)
    assert entry_grants(decision) == []  # the admin's tier, as the admin set it


def test_a_temporary_tier_ends_on_the_rules_tier_once_the_hold_underneath_ran_out() -> None:
    program = make_program(membership_period={"months": 1})
    state = joined(change("Silver"), temporary("Gold", 60, later(1)), program=program)
    decision = apply(state, time_event(later(61)), program)
    assert changes(decision) == [("Gold", "Bronze", "expire")]


def test_purchases_during_a_temporary_tier_give_their_tier_and_its_entry_rewards_at_the_end():
    state = joined(
        temporary("Gold", 30, T0, entry_rewards=False), order("o1", "600.00", at=later(5))
    )
    assert state.tier == "Gold"  # Silver by purchases does not replace the temporary Gold
    decision = apply(state, time_event(later(30)))
    assert changes(decision) == [("Gold", "Silver", "expire")]
    assert entry_grants(decision) == ["welcome-silver"]
    assert decision.state.received_entry_rewards("Silver")


def test_entry_rewards_already_received_are_not_granted_again_at_the_end() -> None:
    state = joined(order("o1", "600.00"), temporary("Gold", 30, later(1)))
    assert state.received_entry_rewards("Silver")
    decision = apply(state, time_event(later(31)))
    assert changes(decision) == [("Gold", "Silver", "expire")]
    assert entry_grants(decision) == []


def test_a_temporary_downgrade_counts_only_what_follows_it_and_restores_the_rest() -> None:
    state = joined(order("o1", "2000.00"), temporary("Bronze", 30, later(1), action="downgrade"))
    small = apply(state, order("o2", "10.00", at=later(2)))
    assert small.state.tier == "Bronze"  # the 2000 before it do not undo it
    decision = apply(small.state, time_event(later(31)))
    assert changes(decision) == [("Bronze", "Gold", "expire")]
    assert decision.state.qualify_since is None


def test_a_temporary_tier_put_back_by_a_cancellation_still_ends_on_the_tier_underneath() -> None:
    tiers = [
        *BASE_PROGRAM["tiers"],
        {"name": "Platinum", "rank": 3, "threshold": 5000},
    ]
    program = make_program(tiers=tiers, membership_period={"months": 12})
    state = joined(
        change("Silver", entry_rewards=False),
        temporary("Gold", 30, later(1), entry_rewards=False),
        order("o1", "6000.00", at=later(2)),  # Platinum by the rules, held 12 months
        program=program,
    )
    assert state.tier == "Platinum"
    cancel = apply(state, msg("order.cancelled", {"order_id": "o1"}, at=later(3)), program)
    assert (cancel.state.tier, cancel.state.tier_expires_at) == ("Gold", later(31))
    decision = apply(cancel.state, time_event(later(31)), program)
    assert changes(decision) == [("Gold", "Silver", "expire")]  # not Platinum, the order's
    assert decision.state.tier_source == "manual"


def test_a_downgrade_window_is_dropped_once_the_period_has_moved_past_it() -> None:
    program = make_program(qualification_period={"rolling_months": 1})
    state = joined(order("o1", "2000.00"), change("Bronze", at=later(1)), program=program)
    assert state.downgrade_qualifying is not None
    within = apply(state, order("o2", "1.00", at=later(20)), program)
    assert within.state.downgrade_qualifying is not None  # o1 still counts for all activity
    past = apply(within.state, order("o3", "1.00", at=later(40)), program)
    assert past.state.downgrade_qualifying is None  # nothing from before it counts any more
    assert past.state.qualify_since is None
    assert past.state.tier == "Bronze"
