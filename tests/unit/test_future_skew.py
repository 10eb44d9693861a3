"""The one rule that reads processing time: messages dated too far in the future are refused."""

from __future__ import annotations

from datetime import timedelta

from models.decide import decide
from tests.unit.factories import CODE_KEY, NOW, PROGRAM, joined, make_program, msg, order, upsert


def test_a_message_dated_far_in_the_future_is_refused_and_changes_nothing() -> None:
    program = make_program(earn={"points_per_currency_unit": 1, "points_expire_after_months": 12})
    state = joined(order("o1", "80.00"), program=program)
    future = msg("points.adjust", {"delta": 5}, at=NOW.replace(year=2099))
    decision = decide(state, future, program, NOW, code_key=CODE_KEY)
    assert decision.rejection is not None
    assert decision.rejection.code == "occurred_at_in_future"
    assert "LOYALTY_MAX_FUTURE_SKEW" in decision.rejection.reason
    assert decision.outputs == ()
    assert decision.state is not None
    # The 2099 date expired no lot and settled nothing: only the refusal is remembered.
    assert decision.state.points_lots == state.points_lots
    assert decision.state.points_balance == 80
    assert [a.kind for a in decision.activity] == ["rejected"]
    assert decision.activity[0].at == NOW  # dated when refused, not at the claimed date
    assert decide(decision.state, future, program, NOW, code_key=CODE_KEY).duplicate


def test_a_message_within_the_skew_is_applied() -> None:
    decision = decide(
        joined(),
        msg("points.adjust", {"delta": 5}, at=NOW + timedelta(minutes=59)),
        PROGRAM,
        NOW,
        code_key=CODE_KEY,
    )
    assert decision.rejection is None
    assert decision.state is not None
    assert decision.state.points_balance == 5


def test_the_skew_is_a_parameter() -> None:
    message = msg("points.adjust", {"delta": 5}, at=NOW + timedelta(minutes=10))
    strict = decide(
        joined(), message, PROGRAM, NOW, code_key=CODE_KEY, max_future_skew=timedelta(minutes=5)
    )
    assert strict.rejection is not None
    assert strict.rejection.code == "occurred_at_in_future"


def test_a_future_join_creates_no_customer() -> None:
    join = upsert(at=NOW + timedelta(days=2))
    decision = decide(None, join, PROGRAM, NOW, code_key=CODE_KEY)
    assert decision.state is None
    assert decision.rejection is not None
    assert decision.rejection.code == "occurred_at_in_future"


def test_a_replay_long_after_accepts_what_was_refused() -> None:
    future = msg("points.adjust", {"delta": 5}, at=NOW + timedelta(days=1))
    later_now = NOW + timedelta(days=2)
    decision = decide(joined(), future, PROGRAM, later_now, code_key=CODE_KEY)
    assert decision.rejection is None
