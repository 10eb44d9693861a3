"""Admin tier commands: ``tier.change`` (manual), ``tier.manage`` and the tier time event.

Defaults chosen here: ``tier.change`` grants entry rewards and emails unless told not to (the
admin "change tier" screen); ``tier.manage`` grants entry rewards on upgrades only and emails
only when ``notify`` is true (communication is an opt-in of the manage-tier action).
"""

from __future__ import annotations

from datetime import datetime

from models.messages import ChangeTier, ExpireTier, ManageTier, ManageTierData
from models.program import Program, Tier
from models.rules.base import Context, Rejection, Step, rank_of
from models.rules.tier_expiry import expiry_at
from models.rules.tier_time import settle_time
from models.rules.tiers import Direction, membership_end, move, rules_tier
from models.state import TierSource


def _unknown_tier(ctx: Context, name: str) -> Rejection:
    known = ", ".join(ctx.program.tier_names) or "(none)"
    return Rejection(code="unknown_tier", reason=f"unknown tier {name!r}; known tiers: {known}")


def change(step: Step, message: ChangeTier, ctx: Context) -> Step | Rejection:
    """Put the customer in the named tier now (one customer, or one row of an import)."""
    data = message.data
    tier = ctx.program.find_tier(data.tier)
    if tier is None:
        return _unknown_tier(ctx, data.tier)
    state = step.state
    if state.tier == tier.name and state.tier_expires_at is None:
        return step.log(
            ctx,
            "tier_unchanged",
            internal_note=data.internal_note,
            tier=tier.name,
            reason=f"already in {tier.name}",
        )
    direction: Direction = "up" if tier.rank > rank_of(ctx.program, state.tier) else "down"
    if state.tier == tier.name:
        direction = "renew"  # same tier, but a temporary one becomes a manual one
    return move(
        step,
        ctx,
        tier,
        direction,
        source="import" if ctx.is_import else "manual",
        held=True,
        hold_until=membership_end(ctx.program, ctx.at),
        qualify_from=ctx.at if direction == "down" else None,
        entry_rewards=data.entry_rewards is not False and direction != "renew",
        force=data.entry_rewards is True,
        notify=data.notify is not False,
        internal_note=data.internal_note,
    )


def unknown_group(program: Program, group_id: str) -> Rejection | None:
    """Refuse a group command for a group the program does not declare (it would reach nobody).

    The worker asks this before fanning a group command out to the members, so a typo in the
    group id is a recorded refusal rather than a command applied to nobody in silence.
    """
    if group_id in program.groups:
        return None
    known = ", ".join(sorted(program.groups)) or "(none)"
    return Rejection(
        code="unknown_group",
        reason=f"the program declares no group {group_id!r}; declared groups: {known}. "
        "Add the group to the program's groups or fix the group_id",
    )


def manage(step: Step, message: ManageTier, ctx: Context) -> Step | Rejection:
    """Apply a manage-tier command to this customer (a group command arrives per member)."""
    group_id = message.data.group_id
    if group_id is not None and (refusal := unknown_group(ctx.program, group_id)) is not None:
        return refusal
    if group_id is not None and group_id not in step.state.groups:
        return Rejection(
            code="not_in_group",
            reason=f"customer {step.state.customer_id} is not a member of group {group_id!r}",
        )
    return manage_tier(step, message.data, ctx)


def manage_tier(step: Step, data: ManageTierData, ctx: Context) -> Step | Rejection:
    """Upgrade, downgrade or renew by a named tier or by the rules, with an optional expiry."""
    state, program = step.state, ctx.program
    expires_at: datetime | None = None
    if data.expiry is not None:
        ends = expiry_at(data.expiry, ctx.at, data.extended_fields)
        if isinstance(ends, Rejection):
            return ends
        expires_at = ends
    if data.strategy == "specific":
        target = program.find_tier(data.tier or "")
        if target is None:
            return _unknown_tier(ctx, data.tier or "")
    else:
        # The admin asks for the rules on all the activity in the period, which lifts the
        # restart of a manual downgrade (automatic evaluation counts only what followed it).
        target = rules_tier(state, program, ctx.at, everything=True)
    chosen = _choose(state.tier, target, data, ctx)
    if not isinstance(chosen, tuple):
        return (
            chosen
            if isinstance(chosen, Rejection)
            else step.log(
                ctx,
                "tier_unchanged",
                internal_note=data.internal_note,
                tier=state.tier,
                reason=chosen,
                action=data.action,
                strategy=data.strategy,
            )
        )
    to, direction = chosen
    source: TierSource = "rules" if data.strategy == "rules" else "manual"
    if expires_at is not None:
        source = "temporary"
    elif ctx.is_import and data.strategy == "specific":
        source = "import"
    hold_until = expires_at or membership_end(program, ctx.at)
    held = source != "rules" or hold_until is not None
    if direction == "renew" and expires_at == state.tier_expires_at:
        return _renew_unchanged(step, ctx, data, held, hold_until)
    default_rewards = data.action == "upgrade"
    return move(
        step,
        ctx,
        to,
        direction,
        source=source,
        held=held,
        hold_until=hold_until,
        expires_at=expires_at,
        qualify_from=ctx.at if direction == "down" and data.strategy == "specific" else None,
        lift_downgrade=data.strategy == "rules",
        entry_rewards=default_rewards if data.entry_rewards is None else data.entry_rewards,
        force=data.entry_rewards is True,
        notify=bool(data.notify),
        internal_note=data.internal_note,
    )


def _renew_unchanged(
    step: Step, ctx: Context, data: ManageTierData, held: bool, hold_until: datetime | None
) -> Step:
    """A renew that leaves tier and expiry as they were: no tier.changed, a recorded no-op.

    The contract promises no ``tier.changed`` for a no-op. The hold restarts for the
    membership period, but a renew never weakens a hold the customer has: the later end wins.
    """
    state = step.state
    if state.tier_held and held:
        ends = [state.tier_hold_until, hold_until]
        until = None if None in ends else max(end for end in ends if end is not None)
    else:
        until = hold_until if held else state.tier_hold_until
    step = step.update(tier_held=held or state.tier_held, tier_hold_until=until)
    return step.log(
        ctx,
        "tier_unchanged",
        internal_note=data.internal_note,
        tier=state.tier,
        reason=f"renew keeps {state.tier} with the same expiry; nothing to publish",
        action=data.action,
        strategy=data.strategy,
        expires_at=state.tier_expires_at.isoformat() if state.tier_expires_at else None,
        hold_until=until.isoformat() if until and step.state.tier_held else None,
    )


def _choose(  # noqa: PLR0911 - a decision table, one return per outcome
    current: str | None, target: Tier | None, data: ManageTierData, ctx: Context
) -> tuple[Tier | None, Direction] | Rejection | str:
    """The tier and direction to move to, a refusal, or why nothing changes (a no-op)."""
    program = ctx.program
    current_rank = rank_of(program, current)
    target_rank = -1 if target is None else target.rank
    target_name = target.name if target else "no tier"
    specific = data.strategy == "specific"
    if data.action == "upgrade":
        if target is not None and target_rank > current_rank:
            return target, "up"
        if specific:
            return Rejection(
                code="not_an_upgrade",
                reason=f"{target_name} is not above the current tier {current or 'no tier'}; "
                "use downgrade or renew",
            )
        return f"no tier above {current or 'no tier'} qualifies (rules give {target_name})"
    if data.action == "downgrade":
        if current is not None and target_rank < current_rank:
            return target, "down"
        if specific:
            return Rejection(
                code="not_a_downgrade",
                reason=f"{target_name} is not below the current tier {current or 'no tier'}; "
                "use upgrade or renew",
            )
        return f"the rules give {target_name}, not below {current or 'no tier'}"
    held = program.find_tier(current) if current is not None else None
    if held is None:
        return Rejection(code="no_tier_to_renew", reason="the customer has no tier to renew")
    if specific and target_rank != current_rank:
        return Rejection(
            code="renew_other_tier",
            reason=f"renew keeps the current tier {current}, not {target_name}; "
            "use upgrade or downgrade",
        )
    if not specific and target_rank < current_rank:
        return Rejection(
            code="not_qualified",
            reason=f"the rules give {target_name}, below {current}; renew with strategy "
            "'specific' to keep it anyway",
        )
    return held, "renew"


def expire(step: Step, message: ExpireTier, ctx: Context) -> Step:
    """Scheduled tier time event: a temporary tier or hold ends, or the tier is reviewed."""
    return settle_time(step, ctx, min(message.data.due_at, ctx.at))
