"""One email per event a customer sees as one, with the rewards and their codes in it."""

from __future__ import annotations

import pytest

from models.outputs import NOTIFICATION_KINDS
from models.program import ProgramError
from tests.unit.factories import (
    PROGRAM,
    apply,
    coffee,
    joined,
    later,
    make_program,
    msg,
    order,
)


def emails(decision):
    return [o.data for o in decision.outputs if o.type == "notification.requested"]


def test_crossing_a_tier_with_entry_rewards_requests_one_email_with_the_codes() -> None:
    decision = apply(joined(), order("o1", "600.00"))
    [email] = emails(decision)
    assert email.kind == "tier_upgraded"
    assert (email.template_data["from_tier"], email.template_data["to_tier"]) == (
        "Bronze",
        "Silver",
    )
    [grant] = decision.state.rewards
    assert email.template_data["rewards"] == [
        {
            "grant_id": grant.grant_id,
            "reward_id": "welcome-silver",
            "reward_name": "5 EUR off",
            "description": None,
            "code": grant.code,
            "value": None,
            "valid_until": None,
        }
    ]


def test_a_redemption_requests_one_email_with_the_reward_and_its_code() -> None:
    state = joined(msg("points.adjust", {"delta": 400}))
    decision = apply(state, msg("reward.redeem", {"reward_id": "tote-bag"}))
    [email] = emails(decision)
    [grant] = decision.state.rewards
    assert email.kind == "reward_redeemed"
    assert email.template_data["code"] == grant.code
    assert email.template_data["rewards"][0]["reward_name"] == "Tote bag"


def test_a_completed_stamp_card_requests_one_email_with_the_card_reward_code() -> None:
    decision = apply(joined(), order("o1", "20.00", [coffee(5)]))
    [email] = emails(decision)
    [grant] = decision.state.rewards
    assert email.kind == "stamp_card_completed"
    assert email.template_data["card"] == 1
    assert email.template_data["rewards"][0]["code"] == grant.code


def test_an_order_that_upgrades_and_fills_a_card_requests_one_email_per_event() -> None:
    decision = apply(joined(), order("o1", "600.00", [coffee(5)]))
    assert sorted(e.kind for e in emails(decision)) == ["stamp_card_completed", "tier_upgraded"]


def test_a_shop_can_announce_upgrades_and_stay_quiet_on_downgrades() -> None:
    quiet_down = make_program(emails={"tier_upgraded": True, "tier_downgraded": False})
    up = apply(joined(program=quiet_down), order("o1", "600.00"), quiet_down)
    assert [e.kind for e in emails(up)] == ["tier_upgraded"]
    refund = msg("order.refunded", {"order_id": "o1", "refund_id": "r1"}, at=later(1))
    down = apply(up.state, refund, quiet_down)
    assert down.state.tier == "Bronze"
    assert emails(down) == []
    assert emails(apply(up.state, refund)) != []  # the default program does announce it


def test_downgrades_and_endings_are_tier_downgraded_and_a_renewal_is_tier_renewed() -> None:
    state = joined(msg("tier.change", {"tier": "Gold"}))
    down = apply(
        state,
        msg(
            "tier.manage",
            {"action": "downgrade", "strategy": "specific", "tier": "Silver", "notify": True},
        ),
    )
    assert [e.kind for e in emails(down)] == ["tier_downgraded"]
    temporary = {
        "action": "upgrade",
        "strategy": "specific",
        "tier": "Gold",
        "expiry": {"kind": "duration", "days": 5},
        "notify": True,
    }
    held = apply(joined(), msg("tier.manage", temporary)).state
    ended = apply(held, msg("tier.expire", {"due_at": later(5).isoformat()}, at=later(5)))
    assert [e.kind for e in emails(ended)] == ["tier_downgraded"]
    renew = {
        "action": "renew",
        "strategy": "specific",
        "tier": "Silver",
        "notify": True,
        "expiry": {"kind": "duration", "months": 1},
    }
    renewed = apply(down.state, msg("tier.manage", renew))
    assert [e.kind for e in emails(renewed)] == ["tier_renewed"]


@pytest.mark.parametrize(
    ("toggle", "hint"),
    [("tier_changed", "tier_upgraded"), ("reward_granted", "stamp_card_completed")],
)
def test_the_retired_toggles_are_refused_saying_what_replaced_them(toggle, hint) -> None:
    with pytest.raises(ProgramError, match=hint) as excinfo:
        make_program(emails={toggle: False})
    assert f"emails: {toggle} is no longer a toggle" in str(excinfo.value)


def test_every_email_kind_has_a_toggle() -> None:
    assert set(NOTIFICATION_KINDS) == set(type(PROGRAM.emails).model_fields)
