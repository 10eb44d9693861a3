"""Refusals a sender can cause say what was wrong and what to do (CONVENTIONS: user errors)."""

from __future__ import annotations

import pytest

from tests.unit.factories import apply, joined, msg, order


def _removed():
    return joined(order("o1", "10.00"), msg("customer.removed", {}))


def _used_grant():
    state = joined(msg("stamps.adjust", {"delta": 5}))
    [grant] = state.rewards
    used = grant.model_copy(update={"status": "used"})
    return state.model_copy(update={"rewards": (used,)}), grant.grant_id


def _revoke_used():
    state, grant_id = _used_grant()
    return state, msg("reward.revoke", {"grant_id": grant_id})


def _manage_with_expiry(expiry, fields):
    body = {
        "action": "upgrade",
        "strategy": "specific",
        "tier": "Gold",
        "expiry": expiry,
        "extended_fields": fields,
    }
    return joined(), msg("tier.manage", body)


CASES = [
    (
        "tier.change for an unknown customer",
        lambda: (None, msg("tier.change", {"tier": "Gold"}, customer_id="ghost")),
        "unknown_customer",
        ["'ghost'", "send customer.upserted first"],
    ),
    (
        "tier.change for a removed customer",
        lambda: (_removed(), msg("tier.change", {"tier": "Gold"})),
        "customer_removed",
        ["was removed from the program on 2025-03-01", "tier.change is not applied", "resend"],
    ),
    (
        "unknown tier",
        lambda: (joined(), msg("tier.change", {"tier": "Platnum"})),
        "unknown_tier",
        ["'Platnum'", "known tiers: Bronze, Silver, Gold"],
    ),
    (
        "redeem an unknown reward",
        lambda: (joined(), msg("reward.redeem", {"reward_id": "yacht"})),
        "unknown_reward",
        ["'yacht'", "can be redeemed: tote-bag (300 points), cookie (3 stamps)"],
    ),
    (
        "revoke an unknown grant",
        lambda: (
            joined(msg("stamps.adjust", {"delta": 5})),
            msg("reward.revoke", {"grant_id": "nope"}),
        ),
        "unknown_grant",
        ["'nope'", "grants that can be revoked", ":grant:stamp_card:card-1:free-coffee"],
    ),
    (
        "revoke when nothing can be revoked",
        lambda: (joined(), msg("reward.revoke", {"grant_id": "nope"})),
        "unknown_grant",
        ["'nope'", "no unused grant to revoke"],
    ),
    (
        "revoke a used grant",
        _revoke_used,
        "grant_not_revocable",
        ["is used", "only an issued, unused reward"],
    ),
    (
        "after_field_date with the field missing",
        lambda: _manage_with_expiry(
            {"kind": "after_field_date", "field": "CheckOut", "days": 30}, {"Nights": 2}
        ),
        "expiry_field_missing",
        ["'CheckOut'", "extended_fields: Nights", "add it or choose another expiry"],
    ),
    (
        "after_field_date with a malformed field",
        lambda: _manage_with_expiry(
            {"kind": "after_field_date", "field": "CheckOut", "days": 30}, {"CheckOut": "15/06"}
        ),
        "expiry_field_malformed",
        ["'CheckOut'", "a date like 2026-06-15", "'15/06'"],
    ),
    (
        "duration_from_field with a malformed field",
        lambda: _manage_with_expiry(
            {"kind": "duration_from_field", "field": "Days", "unit": "days"}, {"Days": "-3"}
        ),
        "expiry_field_malformed",
        ["'Days'", "whole number of days >= 1", "'-3'"],
    ),
]


@pytest.mark.parametrize(
    ("setup", "code", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_refusal_reason_says_what_was_wrong_and_what_to_do(setup, code, words) -> None:
    state, message = setup()
    decision = apply(state, message)
    assert decision.rejection is not None
    assert decision.rejection.code == code
    for word in words:
        assert word in decision.rejection.reason
    if state is not None:
        [entry] = [a for a in decision.activity if a.kind == "rejected"]
        assert entry.details["reason"] == decision.rejection.reason
    assert decision.outputs == ()
