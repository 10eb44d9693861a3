"""Tiers: qualification periods, manual change, manage tier, expiry, membership period."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.unit.factories import (
    PROGRAM,
    T0,
    apply,
    joined,
    kinds,
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


def manage(
    action: str,
    strategy: str,
    tier: str | None = None,
    at: datetime = T0,
    customer_id: str = "c-1",
    **data: object,
):
    body = {"action": action, "strategy": strategy, **data}
    if tier is not None:
        body["tier"] = tier
    return msg("tier.manage", body, at=at, customer_id=customer_id)


def tier_changed(decision):
    [output] = [o for o in decision.outputs if o.type == "tier.changed"]
    return output.data


@pytest.mark.parametrize(
    ("period", "orders", "evaluated_at", "tier"),
    [
        ("lifetime", [("2020-01-01", "600.00")], "2025-06-01", "Silver"),
        ("calendar_year", [("2024-12-31", "600.00")], "2025-01-02", "Bronze"),
        (
            "calendar_year",
            [("2025-01-01", "300.00"), ("2025-03-01", "300.00")],
            "2025-03-02",
            "Silver",
        ),
        ({"rolling_months": 12}, [("2024-05-01", "600.00")], "2025-06-01", "Bronze"),
        ({"rolling_months": 12}, [("2024-07-01", "600.00")], "2025-06-01", "Silver"),
    ],
)
def test_tier_is_evaluated_over_the_qualification_period(period, orders, evaluated_at, tier):
    program = make_program(qualification_period=period)
    messages = [
        order(f"o{n}", total, at=datetime.fromisoformat(day).replace(tzinfo=UTC))
        for n, (day, total) in enumerate(orders)
    ]
    # a tiny order at evaluation time triggers the evaluation
    probe = order("probe", "0.00", at=datetime.fromisoformat(evaluated_at).replace(tzinfo=UTC))
    state, _ = run(upsert(at=datetime(2019, 1, 1, tzinfo=UTC)), *messages, program=program)
    assert state is not None
    state = state.model_copy(update={"tier": "Bronze", "tier_held": False})
    decision = apply(state, probe, program=program)
    assert decision.state.tier == tier


@pytest.mark.parametrize(
    ("metric", "threshold", "orders", "tier"),
    [
        ("amount_spent", 100, ["60.00", "50.00"], "Silver"),
        ("amount_spent", 100, ["60.00"], "Bronze"),
        ("orders", 3, ["1.00", "1.00", "1.00"], "Silver"),
        ("orders", 3, ["1.00", "1.00"], "Bronze"),
    ],
)
def test_tier_metric_can_be_spend_or_order_count(metric, threshold, orders, tier) -> None:
    tiers = [
        {"name": "Bronze", "rank": 0, "threshold": 0},
        {"name": "Silver", "rank": 1, "metric": metric, "threshold": threshold},
    ]
    program = make_program(tiers=tiers)
    state = joined(*[order(f"o{n}", total) for n, total in enumerate(orders)], program=program)
    assert state.tier == tier


def test_manual_change_grants_entry_rewards_emails_and_logs() -> None:
    decision = apply(joined(), change("Gold", internal_note="prize draw"))
    assert kinds(decision) == ["reward.granted", "notification.requested", "tier.changed"]
    data = tier_changed(decision)
    assert (data.from_tier, data.to_tier, data.direction) == ("Bronze", "Gold", "up")
    assert data.notified
    assert data.entry_rewards_granted == (decision.outputs[0].id,)
    assert data.program_version == PROGRAM.version
    assert (data.cause.type, data.cause.id) == ("tier.change", decision.activity[0].cause.id)
    assert decision.activity[-1].internal_note == "prize draw"
    assert decision.state.tier_source == "manual"


@pytest.mark.parametrize(
    ("data", "rewards", "notified"),
    [
        ({"entry_rewards": False}, 0, True),
        ({"notify": False}, 1, False),
        ({"notify": False, "entry_rewards": False}, 0, False),
    ],
)
def test_manual_change_honours_notify_and_entry_rewards(data, rewards, notified) -> None:
    decision = apply(joined(), change("Gold", **data))
    assert len(tier_changed(decision).entry_rewards_granted) == rewards
    assert tier_changed(decision).notified is notified
    assert len(decision.state.rewards) == rewards


def test_no_email_when_the_program_turns_it_off_or_the_customer_declines() -> None:
    quiet = make_program(emails={"tier_upgraded": False})
    assert not tier_changed(apply(joined(program=quiet), change("Gold"), quiet)).notified
    state = joined(msg("customer.upserted", {"email": "a@b.c", "accepts_email": False}))
    decision = apply(state, change("Gold"))
    assert not tier_changed(decision).notified
    assert "notification.requested" not in kinds(decision)


@pytest.mark.parametrize(
    "envelope",
    [
        {"source": "import", "batch": {"id": "b1", "row": 3}},
        {"batch": {"id": "b1", "row": 3, "suppress_notifications": True}},
        {"source": "import"},
    ],
)
def test_imported_tier_change_sends_no_email_and_grants_no_entry_rewards(envelope) -> None:
    decision = apply(joined(), msg("tier.change", {"tier": "Gold"}, **envelope))
    assert kinds(decision) == ["tier.changed"]
    assert tier_changed(decision).entry_rewards_granted == ()
    assert decision.state.tier_source == "import"


def test_imported_manage_tier_sends_no_email_and_grants_no_entry_rewards_even_if_asked() -> None:
    body = {
        "action": "upgrade",
        "strategy": "specific",
        "tier": "Gold",
        "notify": True,
        "entry_rewards": True,
    }
    decision = apply(joined(), msg("tier.manage", body, batch={"id": "b2", "row": 1}))
    assert kinds(decision) == ["tier.changed"]
    assert (tier_changed(decision).notified, decision.state.tier) == (False, "Gold")
    assert decision.state.tier_source == "import"


def test_change_to_an_unknown_tier_is_refused_listing_known_tiers() -> None:
    decision = apply(joined(), change("Platnum"))
    assert decision.rejection.code == "unknown_tier"
    assert "Bronze, Silver, Gold" in decision.rejection.reason


def test_change_to_the_current_tier_is_a_recorded_no_op() -> None:
    decision = apply(joined(), change("Bronze"))
    assert decision.outputs == ()
    assert decision.rejection is None
    assert [a.kind for a in decision.activity] == ["tier_unchanged"]


def test_entry_rewards_of_a_returned_order_are_revoked_and_granted_again_on_a_real_entry() -> None:
    state = joined(order("o1", "600.00"), order("o2", "10.00"))
    assert [g.reward_id for g in state.rewards] == ["welcome-silver"]
    state = joined(
        order("o1", "600.00"),
        msg("order.refunded", {"order_id": "o1", "refund_id": "r1"}),
        order("o2", "600.00"),
    )
    assert [(g.reward_id, g.status) for g in state.rewards] == [
        ("welcome-silver", "revoked"),
        ("welcome-silver", "issued"),
    ]


def test_upgrade_specific_with_duration_then_expires_back_to_the_rules_tier() -> None:
    state = joined(order("o1", "600.00"))
    decision = apply(
        state, manage("upgrade", "specific", "Gold", expiry={"kind": "duration", "days": 90})
    )
    data = tier_changed(decision)
    assert (data.to_tier, data.direction, data.expires_at) == ("Gold", "up", later(90))
    assert decision.state.tier_source == "temporary"
    # automatic evaluation cannot drop a temporary tier before it ends
    held = apply(decision.state, order("o2", "1.00", at=later(30)))
    assert held.state.tier == "Gold"
    expired = apply(held.state, msg("tier.expire", {"due_at": later(90).isoformat()}, at=later(90)))
    data = tier_changed(expired)
    assert (data.from_tier, data.to_tier, data.direction) == ("Gold", "Silver", "expire")
    assert expired.state.tier_expires_at is None
    assert [g.status for g in expired.state.rewards].count("revoked") == 0


def test_a_later_message_ends_a_due_temporary_tier_with_the_same_change_id() -> None:
    state = joined(manage("upgrade", "specific", "Gold", expiry={"kind": "duration", "days": 5}))
    by_event = apply(state, msg("tier.expire", {"due_at": later(5).isoformat()}, at=later(5)))
    lazily = apply(state, order("o9", "1.00", at=later(6)))
    assert tier_changed(by_event).direction == "expire"
    assert by_event.outputs[-1].id == next(o for o in lazily.outputs if o.type == "tier.changed").id


def test_upgrade_by_rules_with_no_higher_tier_is_a_recorded_no_op() -> None:
    decision = apply(joined(), manage("upgrade", "rules"))
    assert decision.outputs == ()
    assert decision.rejection is None
    assert [a.kind for a in decision.activity] == ["tier_unchanged"]


def test_upgrade_by_rules_moves_to_the_highest_qualifying_tier() -> None:
    state = joined(order("o1", "2000.00"), change("Bronze"))  # held down by the manual change
    decision = apply(state, manage("upgrade", "rules"))
    assert tier_changed(decision).to_tier == "Gold"


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (manage("upgrade", "specific", "Bronze"), "not_an_upgrade"),
        (manage("downgrade", "specific", "Gold"), "not_a_downgrade"),
        (manage("renew", "specific", "Gold"), "renew_other_tier"),
        (manage("upgrade", "specific", "Diamond"), "unknown_tier"),
        (
            manage("upgrade", "specific", "Gold", group_id="staff", customer_id="group:staff"),
            "not_in_group",
        ),
    ],
)
def test_manage_tier_refusals(message, code) -> None:
    state = joined(change("Silver"))
    assert apply(state, message).rejection.code == code


def test_downgrade_specific_and_renew() -> None:
    state = joined(change("Gold"))
    down = apply(state, manage("downgrade", "specific", "Silver"))
    assert tier_changed(down).direction == "down"
    renew = apply(
        down.state, manage("renew", "specific", "Silver", expiry={"kind": "duration", "months": 1})
    )
    data = tier_changed(renew)
    assert (data.from_tier, data.to_tier, data.direction) == ("Silver", "Silver", "renew")
    assert data.expires_at == datetime(2025, 4, 1, 12, tzinfo=UTC)


def test_group_command_applies_to_a_member_with_ids_unique_per_member() -> None:
    command = manage("upgrade", "specific", "Gold", group_id="staff", customer_id="group:staff")
    ids = []
    for customer in ("c-1", "c-2"):
        state, _ = run(
            msg(
                "customer.upserted",
                {"email": f"{customer}@x.io", "groups": ["staff"]},
                customer_id=customer,
            )
        )
        decision = apply(state, command)
        assert decision.state.tier == "Gold"
        ids += [o.id for o in decision.outputs]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("expiry", "fields", "expected"),
    [
        ({"kind": "fixed_date", "date": "2026-01-31"}, {}, datetime(2026, 1, 31, tzinfo=UTC)),
        ({"kind": "duration", "months": 1, "days": 1}, {}, datetime(2025, 4, 2, 12, tzinfo=UTC)),
        (
            {"kind": "after_field_date", "field": "CheckOut", "days": 30},
            {"CheckOut": "2025-06-15"},
            datetime(2025, 7, 15, tzinfo=UTC),
        ),
        (
            {"kind": "after_field_date", "field": "CheckOut", "months": 1},
            {"CheckOut": "2025-06-15T10:00:00+02:00"},
            datetime(2025, 7, 15, 8, tzinfo=UTC),
        ),
        (
            {"kind": "duration_from_field", "field": "TrialDays", "unit": "days"},
            {"TrialDays": 60},
            datetime(2025, 4, 30, 12, tzinfo=UTC),
        ),
        (
            {"kind": "duration_from_field", "field": "TrialMonths", "unit": "months"},
            {"TrialMonths": "2"},
            datetime(2025, 5, 1, 12, tzinfo=UTC),
        ),
    ],
)
def test_expiry_strategies(expiry, fields, expected) -> None:
    decision = apply(
        joined(), manage("upgrade", "specific", "Gold", expiry=expiry, extended_fields=fields)
    )
    assert decision.rejection is None
    assert decision.state.tier_expires_at == expected


@pytest.mark.parametrize(
    ("expiry", "fields", "code"),
    [
        ({"kind": "after_field_date", "field": "CheckOut"}, {}, "expiry_field_missing"),
        (
            {"kind": "after_field_date", "field": "CheckOut"},
            {"CheckOut": "soon"},
            "expiry_field_malformed",
        ),
        (
            {"kind": "duration_from_field", "field": "Days", "unit": "days"},
            {"Days": "x"},
            "expiry_field_malformed",
        ),
        (
            {"kind": "duration_from_field", "field": "Days", "unit": "days"},
            {"Days": 1.5},
            "expiry_field_malformed",
        ),
        (
            {"kind": "duration_from_field", "field": "Days", "unit": "days"},
            {"Days": True},
            "expiry_field_malformed",
        ),
        ({"kind": "fixed_date", "date": "2020-01-01"}, {}, "expiry_in_past"),
    ],
)
def test_expiry_from_a_missing_or_malformed_field_is_refused(expiry, fields, code) -> None:
    decision = apply(
        joined(), manage("upgrade", "specific", "Gold", expiry=expiry, extended_fields=fields)
    )
    assert decision.rejection.code == code
    assert decision.state.tier == "Bronze"


def test_manual_upgrade_holds_for_the_membership_period_whatever_the_spend() -> None:
    program = MEMBERSHIP
    state = joined(order("o1", "600.00"), change("Gold"), program=program)
    refunded = apply(
        state, msg("order.refunded", {"order_id": "o1", "refund_id": "r1"}, at=later(100)), program
    )
    assert refunded.state.tier == "Gold"
    # the period ends: the rules take over again
    ended = apply(
        refunded.state,
        msg("tier.expire", {"due_at": later(366).isoformat()}, at=later(366)),
        program,
    )
    assert tier_changed(ended).to_tier == "Bronze"


def test_after_manual_downgrade_only_new_qualifying_activity_upgrades() -> None:
    program = MEMBERSHIP
    state = joined(order("o1", "2000.00"), change("Silver", at=later(1)), program=program)
    assert state.tier == "Silver"
    small = apply(state, order("o2", "100.00", at=later(2)), program)
    assert small.state.tier == "Silver"  # old purchases do not undo the downgrade
    big = apply(small.state, order("o3", "1500.00", at=later(3)), program)
    assert big.state.tier == "Gold"


def test_rules_tier_reached_is_held_for_the_membership_period() -> None:
    state = joined(order("o1", "600.00"), program=MEMBERSHIP)
    spent = apply(state, msg("points.adjust", {"delta": -600}, at=later(2)), MEMBERSHIP)
    assert spent.state.tier == "Silver"
    # but not by activity that was returned: o0's points carried o1 over the threshold
    state = joined(order("o0", "300.00"), order("o1", "300.00", at=later(1)), program=MEMBERSHIP)
    assert state.tier == "Silver"
    refunded = apply(
        state,
        msg("order.refunded", {"order_id": "o0", "refund_id": "r1"}, at=later(2)),
        MEMBERSHIP,
    )
    assert (refunded.state.tier, refunded.state.points_earned) == ("Bronze", 300)


def test_without_membership_period_a_rules_tier_drops_with_its_metric() -> None:
    state = joined(order("o1", "600.00"))
    refunded = apply(state, msg("order.refunded", {"order_id": "o1", "refund_id": "r1"}))
    assert refunded.state.tier == "Bronze"


def test_one_tier_changed_per_real_change_and_none_for_a_no_op() -> None:
    _, decisions = run(upsert(), order("o1", "600.00"), order("o2", "10.00"), change("Silver"))
    assert [kinds(d).count("tier.changed") for d in decisions] == [1, 1, 0, 0]


def test_notify_false_silences_the_entry_reward_email_too() -> None:
    decision = apply(joined(), change("Gold", notify=False))
    assert "notification.requested" not in kinds(decision)
    assert "reward.granted" in kinds(decision)
