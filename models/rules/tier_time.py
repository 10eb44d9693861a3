"""Time passing for tiers: temporary tiers end, holds run out, activity leaves the period.

Three moments change a tier with no message from outside, each a time event (DESIGN.md
invariant 7) with an id derived from the customer and the due time:

- ``tier_expires_at``: a temporary tier ends; the customer returns to the tier the rules give
  (``direction: "expire"``);
- ``tier_hold_until``: the membership period of a held tier ends; the tier is re-evaluated;
- ``tier_review_at``: under a calendar-year or rolling qualification period, the next moment
  earlier activity leaves the period, so the metric can drop; the tier is re-evaluated and, the
  hold being over, a ``down`` change is emitted when the rules now give less.

``CustomerState.next_due_at`` includes all three, so the scheduler sends a ``tier.expire``
event then; any later message for the customer settles them first, with the same ids.
"""

from __future__ import annotations

from datetime import datetime

from models.outputs import Cause, derive_id
from models.program import Program
from models.rules.base import Context, Step, rank_of
from models.rules.qualification import next_drop, settle_step
from models.rules.tiers import evaluate, move, rules_tier
from models.state import CustomerState


def review_at(state: CustomerState, program: Program, after: datetime) -> datetime | None:
    """The first moment after ``after`` when activity leaves the period and the tier can drop.

    ``None`` when nothing can drop: lifetime period, no tier or the base tier, a temporary
    tier (its expiry re-evaluates) or a held tier (the hold's end re-evaluates).
    """
    if not state.active or state.tier is None or state.tier_expires_at is not None:
        return None
    base = program.base_tier
    if state.holds_tier_at(after) or rank_of(program, state.tier) <= (base.rank if base else -1):
        return None
    return next_drop(state, program, after)


def schedule_review(step: Step, ctx: Context) -> Step:
    """Record when the tier next needs a review by time, as of the context's time."""
    due = review_at(step.state, ctx.program, ctx.at)
    return step if due == step.state.tier_review_at else step.update(tier_review_at=due)


def _next_due(state: CustomerState) -> datetime | None:
    due = [state.tier_expires_at, state.tier_review_at]
    if state.tier_held:
        due.append(state.tier_hold_until)
    return min((moment for moment in due if moment is not None), default=None)


def settle_time(step: Step, ctx: Context, cutoff: datetime) -> Step:
    """Apply every tier ending and review due by ``cutoff``, oldest first, each at its time."""
    # Each pass clears the due moment it handles and schedules the next one strictly later.
    while step.state.active:
        state = step.state
        due = _next_due(state)
        if due is None or due > cutoff:
            break
        event = _time_event(ctx, state, due)
        step = step.update(tier_review_at=None)
        if state.tier_expires_at == due:
            step = _end_temporary_tier(step, event)
        else:
            if state.tier_held and state.tier_hold_until == due:
                # The hold ends; what counts toward tiers stays what it was (a manual
                # downgrade's restart of the count outlives the hold).
                step = step.update(tier_held=False, tier_hold_until=None)
            step = evaluate(step, event)
        step = schedule_review(step, event)
    return settle_step(step, ctx, cutoff)


def _end_temporary_tier(step: Step, event: Context) -> Step:
    state = step.state
    step = step.update(
        tier_expires_at=None,
        tier_held=False,
        tier_hold_until=None,
        temporary_qualifying=None,
    )
    target = rules_tier(step.state, event.program, event.at)
    if (target.name if target else None) == state.tier:
        return step.log(event, "tier_expiry_kept", tier=state.tier)
    return move(step, event, target, "expire", source="rules", held=False, hold_until=None)


def _time_event(ctx: Context, state: CustomerState, due: datetime) -> Context:
    # The same id whether the scheduler's event or a later message notices the due time first.
    cause_id = derive_id(state.customer_id, "tier.expire", due.isoformat())
    return ctx.caused_by(Cause(type="tier.expire", id=cause_id), due)
