"""customer.forget: personal data erased, balances kept, idempotent, later messages refused."""

from __future__ import annotations

import pytest

from tests.unit.factories import apply, joined, later, msg, order, run, upsert


def test_forget_erases_email_and_names_and_keeps_the_balances() -> None:
    before = joined(order("o1", "600.00"), msg("points.adjust", {"delta": 5, "internal_note": "x"}))
    decision = apply(before, msg("customer.forget", {"reason": "GDPR request from Ana"}))
    state = decision.state
    assert state is not None
    assert (state.email, state.email_normalized, state.first_name, state.last_name) == (
        "",
        "",
        None,
        None,
    )
    assert (state.status, state.accepts_email) == ("forgotten", False)
    assert state.forgotten_at is not None
    assert (state.points_balance, state.tier, state.lifetime_spend) == (
        before.points_balance,
        before.tier,
        before.lifetime_spend,
    )
    assert state.rewards == before.rewards
    assert decision.rejection is None
    assert decision.outputs == ()  # nothing to tell downstream that could name the person
    [entry] = decision.activity
    assert entry.kind == "customer_forgotten"
    assert "Ana" not in entry.model_dump_json()  # the reason is not stored: it may name them


def test_forget_is_idempotent() -> None:
    state = joined(msg("customer.forget", {}))
    again = apply(state, msg("customer.forget", {"reason": "resent"}))
    assert again.rejection is None
    assert again.activity == ()
    assert again.state is not None
    assert again.state.model_dump(exclude={"applied_ids", "version"}) == state.model_dump(
        exclude={"applied_ids", "version"}
    )


def test_a_removed_customer_can_be_forgotten() -> None:
    state = joined(msg("customer.removed", {"reason": "closed"}), msg("customer.forget", {}))
    assert state.status == "forgotten"
    assert state.email == ""


@pytest.mark.parametrize(
    "message",
    [
        order("o2", "10.00", at=later(1)),
        msg("points.adjust", {"delta": 5}, at=later(1)),
        msg("tier.change", {"tier": "Gold"}, at=later(1)),
        upsert("back@example.com", at=later(1)),
        msg("customer.removed", {}, at=later(1)),
    ],
    ids=lambda m: m.type,
)
def test_later_messages_are_refused_as_customer_forgotten(message) -> None:
    state = joined(msg("customer.forget", {}))
    decision = apply(state, message)
    assert decision.rejection is not None
    assert decision.rejection.code == "customer_forgotten"
    assert decision.state is not None
    assert decision.state.email == ""
    assert decision.state.first_name is None
    assert decision.outputs == ()


def test_forget_for_an_unknown_customer_is_refused_like_any_message() -> None:
    state, [decision] = run(msg("customer.forget", {}))
    assert state is None
    assert decision.rejection is not None
    assert decision.rejection.code == "unknown_customer"
