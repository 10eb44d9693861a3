"""Variable points redemption: a reward priced as a rate, in steps, with a min and a max."""

from __future__ import annotations

from decimal import Decimal

import pytest

from models.program import ProgramError
from tests.unit.factories import BASE_PROGRAM, apply, joined, kinds, make_program, msg

RATE = {
    "reward_id": "points-off",
    "name": "Points off your order",
    "points_rate": {"points": 100, "amount": "1.00", "min_points": 500, "max_points": 5000},
}
PROGRAM = make_program(rewards=[*BASE_PROGRAM["rewards"], RATE])


def redeem(points: int | None = None, id: str | None = None):
    data: dict[str, object] = {"reward_id": "points-off"}
    if points is not None:
        data["points"] = points
    return msg("reward.redeem", data, id=id)


def bought(state):
    return [g for g in state.rewards if g.origin == "redemption"]


def rich():
    return joined(msg("points.adjust", {"delta": 2000}), program=PROGRAM)


def test_the_customer_chooses_the_points_and_the_grant_records_its_value() -> None:
    decision = apply(rich(), redeem(700), PROGRAM)
    assert decision.rejection is None
    state = decision.state
    assert state.points_balance == 1300
    [grant] = bought(state)
    assert (grant.cost_points, grant.value.kind, grant.value.amount) == (
        700,
        "amount_off",
        Decimal("7.00"),
    )
    [granted] = [o for o in decision.outputs if o.type == "reward.granted"]
    assert granted.data.value.amount == Decimal("7.00")
    assert granted.data.points_spent == 700
    assert "reward.redeemed" in kinds(decision)


@pytest.mark.parametrize(
    ("points", "code", "words"),
    [
        (None, "points_required", "send points: a multiple of 100 from 500 to 5000"),
        (750, "points_off_step", "not a whole step"),
        (400, "points_below_minimum", "below the minimum"),
        (5100, "points_above_maximum", "above the maximum"),
        (2100, "insufficient_points", "the balance is 2000"),
    ],
)
def test_refusals_say_what_to_send(points: int | None, code: str, words: str) -> None:
    decision = apply(rich(), redeem(points), PROGRAM)
    assert decision.rejection.code == code
    assert words in decision.rejection.reason
    assert "100 points for 1.00 EUR off" in decision.rejection.reason
    assert decision.state.points_balance == 2000
    assert bought(decision.state) == []


def test_points_on_a_fixed_price_reward_must_match_its_cost() -> None:
    state = rich()
    refused = apply(state, msg("reward.redeem", {"reward_id": "tote-bag", "points": 200}), PROGRAM)
    assert refused.rejection.code == "points_not_accepted"
    assert "300 points" in refused.rejection.reason
    exact = apply(state, msg("reward.redeem", {"reward_id": "tote-bag", "points": 300}), PROGRAM)
    assert exact.rejection is None


def test_a_replayed_redemption_spends_once_and_revoking_gives_the_points_back() -> None:
    message = redeem(500, id="redeem-1")
    first = apply(rich(), message, PROGRAM)
    again = apply(first.state, message, PROGRAM)
    assert again.duplicate
    assert again.state.points_balance == 1500
    [grant] = bought(first.state)
    revoked = apply(first.state, msg("reward.revoke", {"grant_id": grant.grant_id}), PROGRAM)
    assert revoked.state.points_balance == 2000


@pytest.mark.parametrize(
    ("rate", "path", "words"),
    [
        ({"points": 0, "amount": "1"}, "rewards[5].points_rate.points", ">= 1"),
        ({"points": 100, "amount": "0"}, "rewards[5].points_rate.amount", "above 0"),
        ({"points": 100, "amount": "1", "min_points": 150}, "rewards[5].points_rate", "multiple"),
        (
            {"points": 100, "amount": "1", "min_points": 500, "max_points": 300},
            "rewards[5].points_rate",
            "at least min_points",
        ),
    ],
)
def test_a_bad_rate_names_its_path(rate: dict[str, object], path: str, words: str) -> None:
    with pytest.raises(ProgramError) as excinfo:
        make_program(rewards=[*BASE_PROGRAM["rewards"], {**RATE, "points_rate": rate}])
    text = str(excinfo.value)
    assert path in text
    assert words in text


def test_a_rate_reward_has_no_fixed_cost_or_value() -> None:
    bad = {**RATE, "cost_points": 100}
    with pytest.raises(ProgramError, match=r"rewards\[5\].*points_rate has no cost_points"):
        make_program(rewards=[*BASE_PROGRAM["rewards"], bad])
