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
from models.rules.qualification import lowered, next_drop, settle_step
from models.rules.tiers import evaluate, move, rules_tier
from models.state import CustomerState, TierSnapshot


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


def schedule_review(step: Step, ctx: Context, before: CustomerState | None = None) -> Step:
    """Record when the tier next needs a review by time, as of the context's time.

    With ``before`` (the state before the message), a review still ahead is kept when the
    message changed neither the tier nor its hold and lowered nothing the tier counts: new
    activity only puts the drop later, so the review is at worst early, and an early review
    finds nothing to do and schedules the next one. This spares a walk over the buckets on
    every order.
    """
    state = step.state
    kept = state.tier_review_at
    if before is not None and kept is not None and kept > ctx.at and _standing(before, state, ctx):
        return step
    due = review_at(state, ctx.program, ctx.at)
    return step if due == kept else step.update(tier_review_at=due)


def _standing(before: CustomerState, after: CustomerState, ctx: Context) -> bool:
    """Whether the tier, its hold and its metric stand as they did (or the metric rose)."""
    tier = ctx.program.find_tier(after.tier) if after.tier is not None else None
    if tier is None or before.tier != after.tier or before.tier_held != after.tier_held:
        return False
    if (before.tier_hold_until, before.tier_expires_at) != (
        after.tier_hold_until,
        after.tier_expires_at,
    ):
        return False
    return not lowered(before, after, tier.metric, ctx.at, ctx.program)


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
    """Return the customer to the tier they would hold without the temporary one.

    That is the tier held underneath when its hold still runs (a manual tier, or one the
    membership period holds), unless the rules now give more; otherwise the tier the rules
    give, counting purchases made during the temporary period, whose entry rewards are granted
    then when the customer never received them (coming back is not a new entry, so
    ``entry_rewards_per_tier: every_entry`` grants no more than that). Returning to the tier
    held underneath grants nothing: it is the admin's tier, as the admin set it.
    """
    state, program = step.state, event.program
    under = state.tier_underneath
    step = step.update(
        tier_expires_at=None,
        tier_held=False,
        tier_hold_until=None,
        temporary_qualifying=None,
        tier_underneath=None,
    )
    target = rules_tier(step.state, program, event.at)
    held = program.find_tier(under.tier) if under is not None and under.tier else None
    if (
        under is not None
        and held is not None
        and _still_held(under, event.at)
        and rank_of(program, target.name if target else None) <= held.rank
    ):
        restored = {
            "tier_source": under.tier_source,
            "tier_held": under.tier_held,
            "tier_hold_until": under.tier_hold_until,
        }
        if held.name == state.tier:
            return step.update(**restored).log(event, "tier_expiry_kept", tier=state.tier)
        return move(
            step,
            event,
            held,
            "expire",
            source=under.tier_source,
            held=under.tier_held,
            hold_until=under.tier_hold_until,
        )
    if (target.name if target else None) == state.tier:
        return step.update(tier_source="rules").log(event, "tier_expiry_kept", tier=state.tier)
    return move(
        step,
        event,
        target,
        "expire",
        source="rules",
        held=False,
        hold_until=None,
        entry_rewards=target is not None and not step.state.received_entry_rewards(target.name),
    )


def _still_held(under: TierSnapshot, at: datetime) -> bool:
    """Whether the tier held underneath would still be held at ``at``."""
    return under.tier_held and (under.tier_hold_until is None or at < under.tier_hold_until)


def _time_event(ctx: Context, state: CustomerState, due: datetime) -> Context:
    # The same id whether the scheduler's event or a later message notices the due time first.
    cause_id = derive_id(state.customer_id, "tier.expire", due.isoformat())
    return ctx.caused_by(Cause(type="tier.expire", id=cause_id), due)
