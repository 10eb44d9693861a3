"""Reminders: a lot of points about to expire, a tier about to end.

Both are due times of the customer (``CustomerState.reminder_at``, part of ``next_due_at``):
the scheduler sends a ``reminder.due`` event then, and any later message settles them first
with the same ids, so whichever comes first requests the email and the other finds it done.

- ``points_expiring``: ``reminders.points_expiring_days`` before a lot expires, one request per
  lot (``PointsLot.reminded``), none when the lot is spent by then (spent lots are gone) or
  expires first. A lot the customer did not yet hold at the reminder moment (say, points given
  with a 3-day expiry under a 7-day reminder) gets none: there was no such moment.
- ``tier_expiring``: ``reminders.tier_expiring_days`` before a temporary tier ends or a
  membership hold runs out, once per ending (``tier_reminded_end``), and only when the
  customer would then hold a lower tier on what counts at that moment: a reminder that the
  tier ends is wrong for a customer whose purchases keep it.

Ids derive from the lot or the ending (cause ``reminder.due``), so a replay sends nothing twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from models.messages import SendReminders
from models.outputs import Cause, derive_id
from models.program import Program
from models.rules.base import Context, Step, rank_of
from models.rules.tiers import rules_tier
from models.state import CustomerState, PointsLot


def _lot_remind_at(lot: PointsLot, days: int) -> datetime | None:
    """When this lot's reminder is due (``None``: never, or already requested)."""
    if lot.expires_at is None or lot.reminded:
        return None
    moment = lot.expires_at - timedelta(days=days)
    return moment if lot.earned_at <= moment else None


def _tier_end(state: CustomerState) -> datetime | None:
    if state.tier_expires_at is not None:
        return state.tier_expires_at
    return state.tier_hold_until if state.tier_held else None


def _tier_remind_at(
    state: CustomerState, program: Program, days: int
) -> tuple[datetime, datetime] | None:
    """The ending a reminder is due for and when (``None``: none due).

    None for the base tier or no tier: there is nothing lower to drop to.
    """
    end = _tier_end(state)
    if end is None or state.tier is None or state.tier_reminded_end == end:
        return None
    base = program.base_tier
    if rank_of(program, state.tier) <= (base.rank if base else -1):
        return None
    moment = end - timedelta(days=days)
    if state.tier_since is None or state.tier_since > moment:
        return None
    return end, moment


def send_due(step: Step, ctx: Context, cutoff: datetime) -> Step:
    """Request every reminder due by ``cutoff`` whose subject is still ahead."""
    reminders = ctx.program.reminders
    if reminders.points_expiring_days is not None:
        step = _points_expiring(step, ctx, cutoff, reminders.points_expiring_days)
    if reminders.tier_expiring_days is not None:
        step = _tier_expiring(step, ctx, cutoff, reminders.tier_expiring_days)
    return step


def _points_expiring(step: Step, ctx: Context, cutoff: datetime, days: int) -> Step:
    lots = list(step.state.points_lots)
    for index, lot in enumerate(lots):
        if lot.expires_at is None or lot.expires_at - timedelta(days=days) > cutoff:
            break  # in spend order: every later lot is reminded later
        moment = _lot_remind_at(lot, days)
        if moment is None or lot.expires_at <= cutoff:
            continue  # no reminder for it, or it expires now without one
        lots[index] = lot.model_copy(update={"reminded": True})
        step = step.update(points_lots=tuple(lots))
        event = ctx.caused_by(
            Cause(type="reminder.due", id=derive_id(lot.lot_id, "remind")), moment
        )
        step, notified = step.notify(
            event,
            "points_expiring",
            {
                "points": lot.amount,
                "expires_at": lot.expires_at.isoformat(),
                "days": days,
                "balance": step.state.points_balance,
            },
        )
        step = step.log(
            event,
            "points_expiring_reminder",
            lot_id=lot.lot_id,
            points=lot.amount,
            expires_at=lot.expires_at.isoformat(),
            notified=notified,
        )
    return step


def _tier_expiring(step: Step, ctx: Context, cutoff: datetime, days: int) -> Step:
    state, program = step.state, ctx.program
    due = _tier_remind_at(state, program, days)
    if due is None or due[1] > cutoff:
        return step
    end, moment = due
    step = step.update(tier_reminded_end=end)
    if end <= cutoff:
        return step  # the ending itself has come: no reminder after the fact
    # What the customer would hold when it ends, on what counts then (a temporary tier's
    # own restart of the count ends with it).
    after = rules_tier(state.model_copy(update={"temporary_qualifying": None}), program, end)
    if rank_of(program, after.name if after else None) >= rank_of(program, state.tier):
        return step  # their purchases keep the tier: nothing to remind them of
    event = ctx.caused_by(
        Cause(
            type="reminder.due",
            id=derive_id(state.customer_id, "tier.remind", end.isoformat()),
        ),
        moment,
    )
    tier = program.find_tier(state.tier) if state.tier else None
    step, notified = step.notify(
        event,
        "tier_expiring",
        {
            "tier": state.tier,
            "expires_at": end.isoformat(),
            "days": days,
            "tier_after": after.name if after else None,
            "benefits": list(tier.benefits) if tier else [],
        },
    )
    return step.log(
        event,
        "tier_expiring_reminder",
        tier=state.tier,
        expires_at=end.isoformat(),
        tier_after=after.name if after else None,
        notified=notified,
    )


def schedule(step: Step, ctx: Context) -> Step:
    """Record when the next reminder falls due (``reminder_at``)."""
    state, reminders = step.state, ctx.program.reminders
    due: list[datetime] = []
    if reminders.points_expiring_days is not None:
        for lot in state.points_lots:
            if lot.expires_at is None:
                break
            moment = _lot_remind_at(lot, reminders.points_expiring_days)
            if moment is not None and lot.expires_at > ctx.at:
                due.append(moment)
                break  # in spend order: the first one is the soonest
    if reminders.tier_expiring_days is not None and state.active:
        tier_due = _tier_remind_at(state, ctx.program, reminders.tier_expiring_days)
        if tier_due is not None and tier_due[0] > ctx.at:
            due.append(tier_due[1])
    at = min(due, default=None)
    return step if at == state.reminder_at else step.update(reminder_at=at)


def due(step: Step, message: SendReminders, ctx: Context) -> Step:
    """Scheduled reminders: those due by ``due_at`` (already settled before any rule)."""
    return send_due(step, ctx, min(message.data.due_at, ctx.at))
