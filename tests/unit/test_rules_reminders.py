"""Reminders before points expire and before a tier ends; the stamp card email's code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.unit.factories import T0, apply, joined, later, make_program, msg, order

REMINDING = make_program(
    earn={"points_per_currency_unit": 1, "points_expire_after_months": 12},
    reminders={"points_expiring_days": 30, "tier_expiring_days": 14},
    membership_period={"months": 12},
    qualification_period={"rolling_months": 12},
)
EXPIRES = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # 12 months after T0: the hold ends
LOT_EXPIRES = datetime(2026, 3, 2, tzinfo=UTC)  # points last to the end of that day


def tick(at: datetime, id: str | None = None):
    return msg("reminder.due", {"due_at": at.isoformat()}, at=at, source="system", id=id)


def emails(decision, kind: str):
    return [
        o for o in decision.outputs if o.type == "notification.requested" and o.data.kind == kind
    ]


def test_points_expiring_is_requested_n_days_before_a_lot_expires_once() -> None:
    state = joined(order("o1", "100.00"), program=REMINDING)
    remind = LOT_EXPIRES - timedelta(days=30)
    assert state.reminder_at == remind
    assert state.next_due_at == remind
    decision = apply(state, tick(remind, id="time:c-1:reminder.due"), REMINDING)
    [email] = emails(decision, "points_expiring")
    assert email.data.template_data["points"] == 100
    assert email.data.template_data["expires_at"] == LOT_EXPIRES.isoformat()
    state = decision.state
    assert state.points_lots[0].reminded
    assert state.reminder_at is None
    assert state.next_due_at == EXPIRES  # the base tier's hold ends first, then the lot
    # the scheduler's event again, or under another id: nothing sent twice
    assert apply(state, tick(remind, id="time:c-1:reminder.due"), REMINDING).duplicate
    assert not emails(apply(state, tick(remind + timedelta(days=1)), REMINDING), "points_expiring")


def test_a_later_message_requests_it_first_with_the_same_id() -> None:
    state = joined(order("o1", "100.00"), program=REMINDING)
    remind = LOT_EXPIRES - timedelta(days=30)
    by_tick = emails(apply(state, tick(remind), REMINDING), "points_expiring")
    by_order = emails(
        apply(state, order("o2", "5.00", at=remind + timedelta(days=2)), REMINDING),
        "points_expiring",
    )
    assert [e.id for e in by_tick] == [e.id for e in by_order]


def test_no_reminder_for_a_spent_lot() -> None:
    state = joined(order("o1", "300.00"), program=REMINDING)
    state = apply(
        state, msg("reward.redeem", {"reward_id": "tote-bag"}, at=later(1)), REMINDING
    ).state
    assert state.points_lots == ()
    assert state.reminder_at is None
    decision = apply(state, tick(LOT_EXPIRES - timedelta(days=30)), REMINDING)
    assert not emails(decision, "points_expiring")


def test_no_reminder_after_the_lot_has_expired() -> None:
    state = joined(order("o1", "100.00"), program=REMINDING)
    decision = apply(state, order("o2", "5.00", at=EXPIRES + timedelta(days=1)), REMINDING)
    assert not emails(decision, "points_expiring")
    assert "points_expired" in [a.kind for a in decision.activity]


def test_a_lot_given_with_a_shorter_life_than_the_notice_gets_none() -> None:
    program = make_program(reminders={"points_expiring_days": 60})
    state = joined(msg("points.adjust", {"delta": 50, "expires_in_months": 1}), program=program)
    # it expires in a month: the moment 60 days before passed before the points were given
    assert state.reminder_at is None
    decision = apply(state, tick(later(20)), program)
    assert not emails(decision, "points_expiring")
    assert not decision.state.points_lots[0].reminded


def test_the_email_toggle_turns_it_off_but_it_is_still_handled_once() -> None:
    program = make_program(
        earn={"points_per_currency_unit": 1, "points_expire_after_months": 12},
        reminders={"points_expiring_days": 30},
        emails={"points_expiring": False},
    )
    state = joined(order("o1", "100.00"), program=program)
    decision = apply(state, tick(LOT_EXPIRES - timedelta(days=30)), program)
    assert not emails(decision, "points_expiring")
    [entry] = [a for a in decision.activity if a.kind == "points_expiring_reminder"]
    assert entry.details["notified"] is False
    assert decision.state.reminder_at is None


def test_tier_expiring_before_a_membership_hold_ends_when_the_customer_would_drop() -> None:
    state = joined(order("o1", "600.00"), program=REMINDING)
    assert (state.tier, state.tier_hold_until) == ("Silver", EXPIRES)
    # the order leaves the rolling period at the end of its date a year later, after the hold:
    # at the hold's end it still counts, so the customer keeps Silver and gets no reminder
    decision = apply(state, tick(EXPIRES - timedelta(days=14)), REMINDING)
    assert not emails(decision, "tier_expiring")
    assert decision.state.tier_reminded_end == EXPIRES


def test_tier_expiring_before_a_temporary_tier_ends() -> None:
    manage = msg(
        "tier.manage",
        {
            "action": "upgrade",
            "strategy": "specific",
            "tier": "Gold",
            "expiry": {"kind": "duration", "days": 60},
        },
    )
    state = joined(manage, program=REMINDING)
    ends = T0 + timedelta(days=60)
    assert state.tier_expires_at == ends
    remind = ends - timedelta(days=14)
    assert state.reminder_at == remind
    decision = apply(state, tick(remind, id="time:c-1:reminder.due:tier"), REMINDING)
    [email] = emails(decision, "tier_expiring")
    assert email.data.template_data["tier"] == "Gold"
    assert email.data.template_data["tier_after"] == "Bronze"
    assert email.data.template_data["expires_at"] == ends.isoformat()
    state = decision.state
    assert state.tier_reminded_end == ends
    assert state.next_due_at == ends
    # once per ending
    assert not emails(apply(state, tick(remind + timedelta(days=1)), REMINDING), "tier_expiring")


def test_a_held_tier_the_customer_would_lose_is_reminded() -> None:
    program = make_program(
        reminders={"tier_expiring_days": 14},
        membership_period={"months": 12},
        qualification_period={"rolling_months": 6},
    )
    state = joined(order("o1", "600.00"), program=program)
    # under a 6-month period the order has left by the hold's end: the customer would drop
    remind = EXPIRES - timedelta(days=14)
    assert state.reminder_at == remind
    [email] = emails(apply(state, tick(remind), program), "tier_expiring")
    assert email.data.template_data["tier_after"] == "Bronze"


def test_stamp_card_completed_carries_the_card_rewards_code() -> None:
    decision = apply(joined(), msg("stamps.adjust", {"delta": 5}))
    [grant] = decision.state.rewards
    # adjustments send no email: a card filled by an order does
    state = joined()
    coffees = [{"sku": "latte", "quantity": 5, "unit_price": "4.00", "categories": ["coffee"]}]
    by_order = apply(state, order("o1", "20.00", coffees))
    [email] = emails(by_order, "stamp_card_completed")
    [card] = by_order.state.rewards
    assert email.data.template_data["rewards"][0]["code"] == card.code
    assert grant.code != card.code  # another grant, another code
