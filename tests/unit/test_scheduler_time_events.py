"""The scheduler asks for each kind of time event that is due, with ids a rerun repeats."""

from __future__ import annotations

from datetime import timedelta

from tests.unit.factories import T0, apply, joined, make_program, msg, order
from workers.scheduler import time_events

PENDING = make_program(earn={"points_per_currency_unit": 1, "points_pending_days": 14})
REMINDING = make_program(
    earn={"points_per_currency_unit": 1, "points_expire_after_months": 12},
    reminders={"points_expiring_days": 30},
)


def test_pending_points_due_get_a_points_confirm_event_that_confirms_them() -> None:
    state = joined(order("o1", "100.00"), program=PENDING)
    due = state.next_due_at
    assert due == T0 + timedelta(days=14)
    events = time_events(state, due, due + timedelta(minutes=1))
    assert [e.type for e in events] == ["points.confirm"]
    assert events == time_events(state, due, due + timedelta(minutes=1))  # same ids on a rerun
    decision = apply(state, events[0], PENDING)
    assert (decision.state.points_balance, decision.state.points_pending) == (100, 0)
    assert apply(decision.state, events[0], PENDING).duplicate


def test_a_due_reminder_gets_a_reminder_due_event() -> None:
    state = joined(order("o1", "100.00"), program=REMINDING)
    due = state.next_due_at
    assert due == state.reminder_at
    [event] = time_events(state, due, due)
    assert event.type == "reminder.due"
    decision = apply(state, event, REMINDING)
    assert [o.data.kind for o in decision.outputs] == ["points_expiring"]


def test_nothing_recognised_still_sends_a_tier_expire() -> None:
    state = joined(msg("points.adjust", {"delta": 5}))
    assert [e.type for e in time_events(state, T0, T0)] == ["tier.expire"]
