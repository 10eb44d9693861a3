"""Tiers: qualification metrics, automatic evaluation, moving a customer, time-based endings.

- A customer qualifies for the highest-ranked tier whose threshold they reach on that tier's
  metric (points earned, amount spent, order count) within the qualification period.
- A tier is *held* after an upward move while the membership period runs (or, for a manual
  tier without a membership period, until the next upward move): automatic evaluation may then
  move the customer up but never down.
- After a manual downgrade, only activity from the downgrade on counts toward an automatic
  upgrade (qualifying purchases still upgrade; old ones do not undo the downgrade).
- Entry rewards are granted on entry into a tier by an upward move (and on manual changes
  unless turned off): once per customer and tier, or on every entry, as the program says
  (``entry_rewards_per_tier``). Losing a tier never revokes a grant; only the reversal of
  the order that triggered it does (``reversal``).
- A move requests one email (``tier_upgraded``, ``tier_downgraded`` or ``tier_renewed``) that
  carries the entry rewards and their codes; the grants send none of their own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from models.outputs import NotificationKind, TierChanged, TierChangedData
from models.program import Program, Tier
from models.rules.base import Context, Step, rank_of
from models.rules.grants import grant_reward, reward_lines
from models.rules.periods import add_months
from models.rules.qualification import metrics
from models.state import CustomerState, RewardGrant, TierSnapshot, TierSource
from models.tally import Qualifying

Direction = Literal["up", "down", "renew", "expire"]


def rules_tier(
    state: CustomerState, program: Program, at: datetime, *, everything: bool = False
) -> Tier | None:
    """The highest tier the rules give at ``at``: on the activity that counts, or on all."""
    return program.qualifying_tier(metrics(state, program, at, everything=everything))


def membership_end(program: Program, at: datetime) -> datetime | None:
    """When a tier reached at ``at`` stops being held (``None``: no membership period)."""
    period = program.membership_period
    return None if period is None else add_months(at, period.months)


def move(
    step: Step,
    ctx: Context,
    to: Tier | None,
    direction: Direction,
    *,
    source: TierSource,
    held: bool,
    hold_until: datetime | None,
    expires_at: datetime | None = None,
    qualify_from: datetime | None = None,
    lift_downgrade: bool = False,
    entry_rewards: bool = False,
    force: bool = False,
    notify: bool = True,
    internal_note: str | None = None,
) -> Step:
    """Put the customer in ``to``; grant entry rewards, emit tier.changed, request an email.

    ``force``: the admin asked for the entry rewards explicitly, so the program's
    ``entry_rewards_per_tier: once`` does not withhold them.
    """
    state = step.state
    from_tier = state.tier
    to_name = to.name if to else None
    underneath = None
    if expires_at is not None:
        # A temporary tier covers the tier held before it; one replacing another covers the
        # same one, so its end returns to what was held before the first.
        underneath = state.tier_underneath if state.tier_expires_at else TierSnapshot.of(state)
    step = step.update(
        tier=to_name,
        tier_source=source,
        tier_since=ctx.at,
        tier_expires_at=expires_at,
        tier_held=held,
        tier_hold_until=hold_until,
        tier_underneath=underneath,
        **_qualifying_after(state, expires_at, qualify_from, lift_downgrade=lift_downgrade),
    )
    grants: list[RewardGrant] = []
    withheld: str | None = None
    if entry_rewards and to is not None and ctx.entry_rewards_allowed:
        step, grants, withheld = grant_entry_rewards(step, ctx, to, force=force)
    granted = [grant.grant_id for grant in grants]
    notified = False
    if notify:
        # One email for the whole move: the new tier, its entry rewards and their codes.
        step, notified = step.notify(
            ctx,
            _notification_kind(ctx.program, from_tier, to, direction),
            {
                "from_tier": from_tier,
                "to_tier": to_name,
                "direction": direction,
                "expires_at": expires_at.isoformat() if expires_at else None,
                "benefits": list(to.benefits) if to else [],
                "rewards": reward_lines(ctx, grants),
            },
        )
    change_id = step.output_id(ctx, "tier.changed")
    step = step.emit(
        TierChanged(
            **ctx.envelope(change_id, step.state.customer_id),
            data=TierChangedData(
                from_tier=from_tier,
                to_tier=to_name,
                direction=direction,
                cause=ctx.cause,
                expires_at=expires_at,
                program_version=ctx.program.version,
                notified=notified,
                entry_rewards_granted=tuple(granted),
            ),
        )
    )
    return step.log(
        ctx,
        "tier_changed",
        internal_note=internal_note,
        customer_note=_customer_note(from_tier, to_name, direction),
        from_tier=from_tier,
        to_tier=to_name,
        direction=direction,
        source=source,
        expires_at=expires_at.isoformat() if expires_at else None,
        notified=notified,
        entry_rewards_granted=granted,
        entry_rewards_withheld=withheld,
        program_version=ctx.program.version,
    )


def _qualifying_after(
    state: CustomerState,
    expires_at: datetime | None,
    qualify_from: datetime | None,
    *,
    lift_downgrade: bool,
) -> dict[str, Qualifying | None]:
    """What counts toward tiers after a move.

    A manual downgrade (``qualify_from``, no expiry) restarts the count: only activity from it
    on counts for the rules, through every later move, until another manual downgrade restarts
    it or an admin applies the rules to all activity (``lift_downgrade``). A temporary
    downgrade restarts it only while it lasts; any other move ends that restart.
    """
    if qualify_from is not None and expires_at is None:
        return {
            "downgrade_qualifying": Qualifying(since=qualify_from),
            "temporary_qualifying": None,
        }
    changes: dict[str, Qualifying | None] = {
        "temporary_qualifying": None if qualify_from is None else Qualifying(since=qualify_from)
    }
    if lift_downgrade:
        changes["downgrade_qualifying"] = None
    return changes


def _notification_kind(
    program: Program, from_tier: str | None, to: Tier | None, direction: Direction
) -> NotificationKind:
    """The email of a move: an upgrade, a downgrade (down or an ending), or a renewal."""
    if direction == "renew":
        return "tier_renewed"
    if direction == "up":
        return "tier_upgraded"
    # An ending returns to the tier the customer would hold; rarely that is a higher one.
    rising = to is not None and to.rank > rank_of(program, from_tier)
    return "tier_upgraded" if direction == "expire" and rising else "tier_downgraded"


def grant_entry_rewards(
    step: Step, ctx: Context, tier: Tier, *, force: bool = False
) -> tuple[Step, list[RewardGrant], str | None]:
    """Grant the tier's entry rewards unless the program's policy withholds them.

    Returns the step, the grants and, when withheld, why. With ``entry_rewards_per_tier:
    once`` a customer who already holds a tier's entry rewards gets none on re-entering it
    (a down-and-up cycle cannot farm them); ``force`` (an admin's explicit
    ``entry_rewards: true``) grants them anyway.
    """
    if not tier.entry_rewards:
        return step, [], None
    policy = ctx.program.entry_rewards_per_tier
    if policy == "once" and not force and step.state.received_entry_rewards(tier.name):
        return step, [], f"{tier.name} entry rewards were already received (once per tier)"
    granted: list[RewardGrant] = []
    for reward_id in tier.entry_rewards:
        step, grant = grant_reward(step, ctx, reward_id, "entry", key=tier.name, tier=tier.name)
        granted.append(grant)
    if not step.state.received_entry_rewards(tier.name):
        step = step.update(entry_rewards_received=(*step.state.entry_rewards_received, tier.name))
    return step, granted, None


def _customer_note(from_tier: str | None, to_tier: str | None, direction: Direction) -> str:
    if direction == "renew":
        return f"{to_tier} renewed"
    if direction == "expire":
        return f"{from_tier} ended; now {to_tier or 'no tier'}"
    return f"Moved from {from_tier or 'no tier'} to {to_tier or 'no tier'}"


def move_up_by_rules(step: Step, ctx: Context, to: Tier, *, notify: bool = True) -> Step:
    """An upward move the rules earned: held for the membership period, entry rewards."""
    hold_until = membership_end(ctx.program, ctx.at)
    return move(
        step,
        ctx,
        to,
        "up",
        source="rules",
        held=hold_until is not None,
        hold_until=hold_until,
        entry_rewards=True,
        notify=notify,
    )


def evaluate(step: Step, ctx: Context) -> Step:
    """Re-evaluate after a change to a metric: move up freely, down only when not held."""
    state, program = step.state, ctx.program
    if not state.active:
        return step
    held = state.holds_tier_at(ctx.at)
    target = rules_tier(state, program, ctx.at)
    current = rank_of(program, state.tier)
    target_rank = -1 if target is None else target.rank
    if target is not None and target_rank > current:
        return move_up_by_rules(step, ctx, target)
    if target_rank < current and not held:
        return move(step, ctx, target, "down", source="rules", held=False, hold_until=None)
    return step
