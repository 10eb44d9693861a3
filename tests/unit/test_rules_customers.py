"""Customers: joining, updating, removal, unknown customers, idempotency memory, version."""

from __future__ import annotations

import pytest

from tests.unit.factories import apply, joined, kinds, msg, order, run, upsert


def test_upsert_creates_customer_with_normalised_email_and_base_tier() -> None:
    state, [decision] = run(upsert(email="  Ana.Lima@Example.COM "))
    assert state is not None
    assert state.email_normalized == "ana.lima@example.com"
    assert state.status == "active"
    assert state.tier == "Bronze"
    assert kinds(decision) == ["tier.changed"]  # joining the base tier is published, not emailed
    assert [a.kind for a in decision.activity] == ["customer_joined", "tier_changed"]


def test_upsert_updates_profile_and_groups() -> None:
    state = joined(
        msg(
            "customer.upserted",
            {
                "email": "new@example.com",
                "first_name": "Ana",
                "accepts_email": False,
                "groups": ["staff"],
            },
        )
    )
    assert (state.email, state.accepts_email, state.groups) == (
        "new@example.com",
        False,
        ("staff",),
    )


@pytest.mark.parametrize(
    "message",
    [
        order("o1", "10.00"),
        msg("points.adjust", {"delta": 5}),
        msg("stamps.adjust", {"delta": 1}),
        msg("tier.change", {"tier": "Gold"}),
        msg("reward.redeem", {"reward_id": "tote-bag"}),
        msg("customer.removed", {}),
    ],
    ids=lambda m: m.type,
)
def test_messages_for_unknown_customer_are_refused(message) -> None:
    decision = apply(None, message)
    assert decision.state is None
    assert decision.rejection is not None
    assert decision.rejection.code == "unknown_customer"
    assert "customer.upserted" in decision.rejection.reason


@pytest.mark.parametrize(
    "message",
    [
        order("o2", "900.00"),
        msg("points.adjust", {"delta": 5}),
        msg("tier.change", {"tier": "Gold"}),
        msg("customer.removed", {}),
    ],
    ids=lambda m: m.type,
)
def test_removed_customer_stops_earning_and_keeps_history(message) -> None:
    state = joined(order("o1", "100.00"), msg("customer.removed", {"reason": "asked"}))
    decision = apply(state, message)
    assert decision.rejection is not None
    assert decision.rejection.code == "customer_removed"
    assert decision.outputs == ()
    assert decision.state is not None
    assert decision.state.points_balance == 100  # history and balances are kept
    assert decision.state.status == "removed"
    assert [a.kind for a in decision.activity] == ["rejected"]


def test_upsert_of_removed_customer_updates_profile_but_keeps_them_removed() -> None:
    state = joined(msg("customer.removed", {}))
    decision = apply(state, upsert(email="back@example.com"))
    assert decision.rejection is None
    assert decision.state is not None
    assert decision.state.status == "removed"
    assert decision.state.email == "back@example.com"


def test_same_message_id_twice_is_a_duplicate_with_no_outputs() -> None:
    state = joined()
    message = msg("points.adjust", {"delta": 600})
    first = apply(state, message)
    second = apply(first.state, message)
    assert second.duplicate
    assert second.outputs == ()
    assert second.activity == ()
    assert second.state == first.state


def test_every_change_increments_the_version() -> None:
    _state, decisions = run(upsert(), order("o1", "10.00"), msg("points.adjust", {"delta": 1}))
    assert [d.state.version for d in decisions if d.state] == [1, 2, 3]


def test_refusals_are_remembered_so_a_redelivery_is_a_duplicate() -> None:
    state = joined()
    message = msg("points.adjust", {"delta": -5})
    first = apply(state, message)
    assert first.rejection is not None
    assert apply(first.state, message).duplicate
