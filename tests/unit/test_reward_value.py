"""Catalog rewards' value and valid_days: validated in the program, carried by the grant."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from models.program import ProgramError
from tests.unit.factories import BASE_PROGRAM, T0, apply, joined, make_program, order

REWARDS = [
    {
        "reward_id": "welcome-silver",
        "name": "5 EUR off",
        "value": {"kind": "amount_off", "amount": 5},
        "valid_days": 30,
    },
    {
        "reward_id": "welcome-gold",
        "name": "10% off",
        "value": {"kind": "percent_off", "percent": 10},
    },
    *BASE_PROGRAM["rewards"][2:],
]


def test_grant_and_reward_granted_carry_the_value_and_valid_until() -> None:
    program = make_program(rewards=REWARDS)
    decision = apply(joined(program=program), order("o1", "600.00"), program)
    [grant] = decision.state.rewards
    assert grant.value is not None
    assert grant.value.amount == Decimal(5)
    assert grant.valid_until == T0 + timedelta(days=30)
    [granted] = [o for o in decision.outputs if o.type == "reward.granted"]
    payload = granted.model_dump(mode="json")["data"]
    assert payload["value"] == {
        "kind": "amount_off",
        "amount": "5",
        "percent": None,
        "product": None,
    }
    assert payload["valid_until"].startswith("2025-03-31")
    [email] = [o for o in decision.outputs if o.type == "notification.requested"]
    assert email.data.template_data["rewards"][0]["value"]["amount"] == "5"


def test_a_reward_without_value_or_validity_grants_a_coupon_without_expiry() -> None:
    decision = apply(joined(), order("o1", "600.00"))
    [grant] = decision.state.rewards
    assert (grant.value, grant.valid_until) == (None, None)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"kind": "amount_off"}, "needs exactly 'amount'"),
        ({"kind": "amount_off", "amount": 5, "percent": 3}, "needs exactly 'amount'"),
        ({"kind": "percent_off", "percent": 120}, "at most 100"),
        ({"kind": "amount_off", "amount": -1}, "above 0"),
        ({"kind": "gift"}, "kind"),
    ],
)
def test_bad_values_are_refused_with_the_path(value: dict, message: str) -> None:
    rewards = [{"reward_id": "welcome-silver", "name": "x", "value": value}, *REWARDS[1:]]
    with pytest.raises(ProgramError, match=message) as excinfo:
        make_program(rewards=rewards)
    assert "rewards[0].value" in str(excinfo.value)


def test_valid_days_must_be_a_positive_whole_number() -> None:
    rewards = [{**REWARDS[0], "valid_days": 0}, *REWARDS[1:]]
    with pytest.raises(ProgramError, match=r"rewards\[0\]\.valid_days"):
        make_program(rewards=rewards)


def test_an_expired_code_is_not_used_by_a_later_order() -> None:
    program = make_program(rewards=REWARDS)
    decision = apply(joined(program=program), order("o1", "600.00"), program)
    [grant] = decision.state.rewards
    late = order("o2", "10.00", at=T0 + timedelta(days=31), reward_codes=[grant.code])
    after = apply(decision.state, late, program)
    assert after.state.grant(grant.grant_id).status == "issued"
    assert "reward.used" not in [o.type for o in after.outputs]
    [note] = [a for a in after.activity if a.kind == "reward_code_not_used"]
    assert "expired" in note.details["reason"]
    in_time = order("o3", "10.00", at=T0 + timedelta(days=29), reward_codes=[grant.code])
    assert apply(decision.state, in_time, program).state.grant(grant.grant_id).status == "used"
