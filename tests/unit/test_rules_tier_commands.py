"""Entry rewards on re-entry, renew no-ops, group checks and field-date expiries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models.rules.tier_commands import unknown_group
from tests.unit.factories import (
    PROGRAM,
    apply,
    joined,
    kinds,
    later,
    make_program,
    msg,
    order,
)


def manage(action: str, strategy: str, tier: str | None = None, **data: object):
    body = {"action": action, "strategy": strategy, **data}
    if tier is not None:
        body["tier"] = tier
    customer_id = "group:" + str(data["group_id"]) if "group_id" in data else "c-1"
    return msg("tier.manage", body, at=data.pop("at", later(0)), customer_id=customer_id)


def silver_grants(state) -> int:
    return sum(1 for g in state.rewards if g.reward_id == "welcome-silver")


def down_and_up(program=PROGRAM):
    """Reach Silver, fall back to Bronze (points taken away), then reach Silver again."""
    return joined(
        order("o1", "600.00"),
        msg("points.adjust", {"delta": -200}, at=later(1)),
        order("o2", "200.00", at=later(2)),
        program=program,
    )


def test_re_entering_a_tier_grants_its_entry_rewards_once_by_default() -> None:
    state = down_and_up()
    assert state.tier == "Silver"
    assert silver_grants(state) == 1
    assert state.entry_rewards_received == ("Silver",)


def test_the_withheld_rewards_are_said_on_the_tier_change() -> None:
    state = joined(order("o1", "600.00"), msg("points.adjust", {"delta": -200}, at=later(1)))
    decision = apply(state, order("o2", "200.00", at=later(2)))
    [change] = [o.data for o in decision.outputs if o.type == "tier.changed"]
    assert (change.to_tier, change.entry_rewards_granted) == ("Silver", ())
    [entry] = [a for a in decision.activity if a.kind == "tier_changed"]
    assert "already received" in entry.details["entry_rewards_withheld"]


def test_every_entry_grants_entry_rewards_on_each_entry() -> None:
    every_entry = make_program(entry_rewards_per_tier="every_entry")
    assert silver_grants(down_and_up(every_entry)) == 2


@pytest.mark.parametrize(
    ("command", "grants"),
    [
        (msg("tier.change", {"tier": "Silver"}, at=later(3)), 1),
        (msg("tier.change", {"tier": "Silver", "entry_rewards": True}, at=later(3)), 2),
        (manage("upgrade", "specific", "Silver", at=later(3)), 1),
        (manage("upgrade", "specific", "Silver", entry_rewards=True, at=later(3)), 2),
    ],
)
def test_an_explicit_entry_rewards_true_grants_them_again(command, grants) -> None:
    state = joined(order("o1", "600.00"), msg("tier.change", {"tier": "Bronze"}, at=later(1)))
    assert state.tier == "Bronze"
    decision = apply(state, command)
    assert decision.state.tier == "Silver"
    assert silver_grants(decision.state) == grants


def test_a_renew_that_changes_nothing_publishes_no_tier_change() -> None:
    state = joined(msg("tier.change", {"tier": "Silver"}))
    decision = apply(state, manage("renew", "specific", "Silver", at=later(1)))
    assert decision.rejection is None
    assert decision.outputs == ()
    [entry] = decision.activity
    assert entry.kind == "tier_unchanged"
    assert entry.details["action"] == "renew"
    assert decision.state.tier == "Silver"


def test_a_renew_with_the_same_expiry_publishes_nothing_and_a_new_one_does() -> None:
    expiry = {"kind": "fixed_date", "date": "2026-01-31"}
    state = joined(manage("upgrade", "specific", "Gold", expiry=expiry))
    same = apply(state, manage("renew", "specific", "Gold", expiry=expiry, at=later(1)))
    assert same.outputs == ()
    assert [a.kind for a in same.activity] == ["tier_unchanged"]
    assert same.state.tier_expires_at == datetime(2026, 1, 31, tzinfo=UTC)
    longer = {"kind": "fixed_date", "date": "2026-06-30"}
    moved = apply(state, manage("renew", "specific", "Gold", expiry=longer, at=later(1)))
    assert kinds(moved) == ["tier.changed"]


def test_a_group_command_for_an_undeclared_group_is_refused_naming_the_groups() -> None:
    decision = apply(joined(), manage("upgrade", "specific", "Gold", group_id="stafff"))
    assert decision.rejection.code == "unknown_group"
    assert "'stafff'" in decision.rejection.reason
    assert "staff" in decision.rejection.reason
    assert decision.state.tier == "Bronze"
    assert unknown_group(PROGRAM, "staff") is None
    assert unknown_group(PROGRAM, "vip").code == "unknown_group"


@pytest.mark.parametrize(
    ("field", "months", "expected"),
    [
        # 30 January in New York + 1 month: the last day of February there (03:00 UTC)
        ("2026-01-30T22:00:00-05:00", 1, datetime(2026, 3, 1, 3, tzinfo=UTC)),
        ("2026-01-31", 1, datetime(2026, 2, 28, tzinfo=UTC)),
        # 31 March in Berlin (30 March in UTC) + 1 month: 30 April there, 29 April in UTC
        ("2026-03-31T01:00:00+02:00", 1, datetime(2026, 4, 29, 23, tzinfo=UTC)),
    ],
)
def test_after_field_date_counts_months_on_the_fields_own_date(field, months, expected) -> None:
    expiry = {"kind": "after_field_date", "field": "CheckOut", "months": months}
    decision = apply(
        joined(),
        manage("upgrade", "specific", "Gold", expiry=expiry, extended_fields={"CheckOut": field}),
    )
    assert decision.rejection is None
    assert decision.state.tier_expires_at == expected


def test_a_renew_that_changes_nothing_restarts_the_hold_and_never_weakens_it() -> None:
    membership = make_program(membership_period={"months": 12})
    state = joined(msg("tier.change", {"tier": "Silver"}), program=membership)
    first_end = state.tier_hold_until
    renewed = apply(state, manage("renew", "specific", "Silver", at=later(30)), membership)
    assert renewed.outputs == ()
    assert renewed.state.tier_held
    assert renewed.state.tier_hold_until > first_end  # the period restarts from the renew
    # without a membership period a manual tier is held with no end; a renew by the rules
    # (which would hold nothing) leaves that hold alone
    manual = joined(
        msg("tier.change", {"tier": "Gold"}),
        order("o1", "1600.00", at=later(1)),  # the rules give Gold too
    )
    assert (manual.tier, manual.tier_held) == ("Gold", True)
    again = apply(manual, manage("renew", "rules", at=later(2)))
    assert again.outputs == ()
    assert (again.state.tier_held, again.state.tier_hold_until) == (True, None)


def test_the_group_command_itself_is_refused_before_any_fan_out() -> None:
    command = manage("upgrade", "specific", "Gold", group_id="vip")
    decision = apply(None, command)
    assert (decision.state, decision.rejection.code) == (None, "unknown_group")
    declared = apply(None, manage("upgrade", "specific", "Gold", group_id="staff"))
    assert declared.rejection.code == "unknown_customer"  # fanned out to members instead
