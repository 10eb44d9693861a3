"""What an order set off, recorded when it is paid and taken back when it no longer stands.

An order may do more than earn points and stamps: the rules may move the customer up a tier
(held for the membership period, with the tier's entry rewards), and an automation may grant a
trial or temporary tier. ``record_triggers`` writes that onto the order's own record;
``undo_triggers`` reads only that record when the order is refunded or cancelled:

- **Tier.** When the tier the customer holds is still the one the order left them in, the
  customer is put back as if the order had counted only for what remains of it: the tier they
  held before the order (when its hold or temporary expiry still runs and the rules give no
  more), otherwise the tier the rules give with what remains. The hold the order's own upward
  move started protects nothing against that order's refund. A tier an automation granted
  because of the order ends only when the order is reversed in full (a partial refund leaves
  the order standing in part). When something later moved the
  tier (another order, an admin, a time event), that move stands and the tier is re-evaluated
  as after any refund.
- **Entry rewards** (cancellation or refund in full only): each grant the order triggered is
  taken back when the customer no longer holds its tier or a higher one. An unused grant is
  revoked (``reward.revoked``, reason on the activity) and its tier is again one whose entry
  rewards a real later entry grants; a used one stays used and the activity says so.
"""

from __future__ import annotations

from datetime import datetime

from models.outputs import RewardRevoked, RewardRevokedData, TierChanged, TierChangedData
from models.program import Program
from models.rules import tiers
from models.rules.base import Context, Step, rank_of
from models.state import (
    CustomerState,
    EntryGrantRef,
    GrantWithdrawal,
    OrderRecord,
    OrderTriggers,
    RewardGrant,
    TierSnapshot,
)

REVOCABLE = frozenset({"issued"})
"""Grant statuses a reversal revokes: unused ones (a used reward stays used)."""


def record_triggers(
    step: Step,
    order_id: str,
    before: TierSnapshot,
    rules_from: int,
    automations_from: int,
) -> Step:
    """Write onto the order's record the tier moves and entry grants among the new outputs.

    ``rules_from`` and ``automations_from`` index ``step.outputs`` where the rules' evaluation
    and the automations began.
    """
    by_rules = _tier_changes(step, rules_from, automations_from)
    by_automations = _tier_changes(step, automations_from, len(step.outputs))
    changes = by_rules + by_automations
    if not changes:
        return step
    reached = next((c.to_tier for c in by_rules if c.direction == "up"), None)
    triggers = OrderTriggers(
        tier_before=before,
        tier_after=step.state.tier,
        tier_reached=reached,
        automation_tier=by_automations[-1].to_tier if by_automations else None,
        entry_grants=tuple(
            EntryGrantRef(tier=change.to_tier, grant_id=grant_id)
            for change in changes
            if change.to_tier is not None
            for grant_id in change.entry_rewards_granted
        ),
    )
    orders = tuple(
        o.model_copy(update={"triggers": triggers}) if o.order_id == order_id else o
        for o in step.state.orders
    )
    return step.update(orders=orders)


def _tier_changes(step: Step, start: int, end: int) -> list[TierChangedData]:
    return [out.data for out in step.outputs[start:end] if isinstance(out, TierChanged)]


def undo_triggers(step: Step, ctx: Context, record: OrderRecord) -> Step:
    """After a refund or cancellation, put the tier and entry rewards back as the record says."""
    triggers = record.triggers
    # A partial refund leaves an automation's tier alone: the order still stands in part.
    undo = triggers is not None and (record.fully_reversed or triggers.automation_tier is None)
    if triggers is not None and undo and _left_as_the_order_set_it(step.state, record, triggers):
        step = _undo_tier(step, ctx, triggers.tier_before)
    else:
        step = tiers.evaluate(_release_unbacked_hold(step, ctx), ctx)
    if triggers is not None and record.fully_reversed:
        step = _take_back_entry_rewards(step, ctx, record, triggers)
    return _take_back_unbacked_grants(step, ctx)


def _backed(state: CustomerState, program: Program, tier: str | None) -> bool:
    """Whether all the activity that still stands, over all time, reaches ``tier``.

    A tier reached by the rules and held by a membership period was earned with purchases
    that stand only if what stands reaches it at least in total (its period may since have
    let some of it go, which the hold is there to bridge).
    """
    total = state.qualifying.total
    reached = program.qualifying_tier(
        {
            "points_earned": total.points_earned,
            "amount_spent": total.amount_spent,
            "orders": total.orders,
        }
    )
    return rank_of(program, reached.name if reached else None) >= rank_of(program, tier)


def _release_unbacked_hold(step: Step, ctx: Context) -> Step:
    """Let a rules tier's membership hold go when what still stands never reached the tier."""
    state = step.state
    if (
        state.tier_source != "rules"
        or not state.holds_tier_at(ctx.at)
        or _backed(state, ctx.program, state.tier)
    ):
        return step
    return step.update(tier_held=False, tier_hold_until=None)


def _left_as_the_order_set_it(
    state: CustomerState, record: OrderRecord, triggers: OrderTriggers
) -> bool:
    """Whether no later move changed the tier since the order set it."""
    return state.tier == triggers.tier_after and state.tier_since == record.paid_at


def _protects(before: TierSnapshot, at: datetime) -> bool:
    """Whether the tier held before the order still holds: its expiry or hold still runs."""
    if before.tier_expires_at is not None:
        return at < before.tier_expires_at
    if not before.tier_held:
        return False
    return before.tier_hold_until is None or at < before.tier_hold_until


def _undo_tier(step: Step, ctx: Context, before: TierSnapshot) -> Step:
    """Move the customer to the tier they would hold had the order counted only for the rest."""
    state, program = step.state, ctx.program
    restored = state.model_copy(update=before.fields())
    # A rules tier held underneath protects only if what stands ever reached it (an earlier
    # order that reached it may have been returned since).
    protected = _protects(before, ctx.at) and (
        before.tier_source != "rules" or _backed(restored, program, before.tier)
    )
    # On what counts now: the counters already hold only what remains of the order.
    target = tiers.rules_tier(restored, program, ctx.at)
    keep_before = protected and rank_of(program, target.name if target else None) <= rank_of(
        program, before.tier
    )
    final = before.tier if keep_before else (target.name if target else None)
    if final == state.tier:
        return step  # what remains still gives the tier the order reached
    direction: tiers.Direction = (
        "down" if rank_of(program, final) < rank_of(program, state.tier) else "up"
    )
    to = program.find_tier(final) if final is not None else None
    if keep_before:
        step = tiers.move(
            step,
            ctx,
            to,
            direction,
            source=before.tier_source,
            held=before.tier_held,
            hold_until=before.tier_hold_until,
            expires_at=before.tier_expires_at,
        )
        # A temporary tier put back covers what it covered before the order, not the tier the
        # order reached.
        return step.update(tier_underneath=before.tier_underneath)
    return tiers.move(step, ctx, to, direction, source="rules", held=False, hold_until=None)


def _take_back_entry_rewards(
    step: Step, ctx: Context, record: OrderRecord, triggers: OrderTriggers
) -> Step:
    program = ctx.program
    holds = rank_of(program, step.state.tier)
    for ref in triggers.entry_grants:
        grant = step.state.grant(ref.grant_id)
        if rank_of(program, ref.tier) <= holds:
            # The customer still holds that tier (or higher): an unused grant stays, remembered
            # as no longer backed by its order, so a later reversal that drops the tier takes it.
            if grant is not None and grant.status in REVOCABLE:
                fallen = ref.model_copy(update={"order_id": record.order_id})
                unbacked = (*step.state.entry_grants_unbacked, fallen)
                step = step.update(entry_grants_unbacked=unbacked)
            continue
        if grant is None or grant.status == "revoked":
            continue
        if grant.status not in REVOCABLE:
            if grant.status == "used":
                # Should the order it was used on fall too, the reward is not given back.
                withdrawn = GrantWithdrawal(order_id=record.order_id, tier=ref.tier)
                step = step.update(
                    rewards=tuple(
                        g.model_copy(update={"withdrawn": withdrawn})
                        if g.grant_id == grant.grant_id
                        else g
                        for g in step.state.rewards
                    )
                )
            step = step.log(
                ctx,
                "entry_reward_kept",
                grant_id=grant.grant_id,
                reward_id=grant.reward_id,
                tier=ref.tier,
                status=grant.status,
                reason=f"order {record.order_id} no longer stands, but the {ref.tier} entry "
                f"reward was already {grant.status}; it stays {grant.status}"
                + (
                    f" (and is revoked, not given back, if order {grant.used_on_order} is "
                    "cancelled or refunded in full)"
                    if grant.status == "used"
                    else ""
                ),
            )
            continue
        reason = (
            f"order {record.order_id} no longer stands, so the {ref.tier} entry it triggered "
            "is undone"
        )
        step = revoke_entry_grant(
            step, ctx, grant, tier=ref.tier, order_id=record.order_id, reason=reason
        )
    return step


def _take_back_unbacked_grants(step: Step, ctx: Context) -> Step:
    """Revoke remembered grants whose order fell once the customer is below their tier."""
    remembered = step.state.entry_grants_unbacked
    if not remembered:
        return step
    program, holds = ctx.program, rank_of(ctx.program, step.state.tier)
    kept: list[EntryGrantRef] = []
    due: list[tuple[EntryGrantRef, RewardGrant]] = []
    for ref in remembered:
        grant = step.state.grant(ref.grant_id)
        if grant is None or grant.status not in REVOCABLE:
            continue  # used or revoked since: nothing left to take back
        if rank_of(program, ref.tier) <= holds:
            kept.append(ref)
        else:
            due.append((ref, grant))
    step = step.update(entry_grants_unbacked=tuple(kept))
    for ref, grant in due:
        reason = (
            f"order {ref.order_id} no longer stands, and now the customer no longer holds "
            f"{ref.tier} either, so the {ref.tier} entry it triggered is undone"
        )
        step = revoke_entry_grant(
            step, ctx, grant, tier=ref.tier, order_id=ref.order_id or "", reason=reason
        )
    return step


def revoke_entry_grant(
    step: Step, ctx: Context, grant: RewardGrant, *, tier: str, order_id: str, reason: str
) -> Step:
    """Revoke an entry reward because an order fell; its tier's entry rewards may come again."""
    rewards = tuple(
        g.model_copy(update={"status": "revoked"}) if g.grant_id == grant.grant_id else g
        for g in step.state.rewards
    )
    received = tuple(name for name in step.state.entry_rewards_received if name != tier)
    step = step.update(rewards=rewards, entry_rewards_received=received)
    step = step.emit(
        RewardRevoked(
            **ctx.envelope(
                step.output_id(ctx, "reward.revoked", grant.grant_id), step.state.customer_id
            ),
            data=RewardRevokedData(
                grant_id=grant.grant_id, reward_id=grant.reward_id, cause=ctx.cause
            ),
        )
    )
    # No email of its own: the cancellation is one event for the customer, and its one email
    # is the tier change's (when the program sends those).
    return step.log(
        ctx,
        "reward_revoked",
        customer_note=f"{grant.reward_id} withdrawn: order {order_id} was returned",
        grant_id=grant.grant_id,
        reward_id=grant.reward_id,
        tier=tier,
        order_id=order_id,
        reason=reason,
    )
