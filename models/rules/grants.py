"""Issuing a reward grant: entry rewards, full stamp cards and redemptions all end here."""

from __future__ import annotations

from typing import Literal

from models.outputs import RewardGranted, RewardGrantedData
from models.rules.base import Context, Step
from models.state import GrantOrigin, GrantStatus, RewardGrant

GrantReason = Literal["entry", "redeem", "stamp_card", "manual"]
_ORIGIN: dict[GrantReason, GrantOrigin] = {
    "entry": "entry",
    "redeem": "redemption",
    "stamp_card": "card",
    "manual": "entry",
}


def grant_reward(
    step: Step,
    ctx: Context,
    reward_id: str,
    reason: GrantReason,
    *,
    key: str | None = None,
    tier: str | None = None,
    points_spent: int = 0,
    stamps_spent: int = 0,
    status: GrantStatus = "issued",
    notify: bool = True,
) -> tuple[Step, str]:
    """Give the customer a reward; return the step and the grant id (derived from the cause).

    ``key`` tells apart several grants of one cause (the tier entered, the card number ...).
    """
    parts = (reason, reward_id) if key is None else (reason, key, reward_id)
    grant_id = step.output_id(ctx, "grant", *parts)
    grant = RewardGrant(
        grant_id=grant_id,
        reward_id=reward_id,
        status=status,
        origin=_ORIGIN[reason],
        granted_at=ctx.at,
        cause=ctx.cause,
        cost_points=points_spent or None,
        cost_stamps=stamps_spent or None,
    )
    step = step.update(rewards=(*step.state.rewards, grant))
    step = step.emit(
        RewardGranted(
            **ctx.envelope(grant_id, step.state.customer_id),
            data=RewardGrantedData(
                grant_id=grant_id,
                reward_id=reward_id,
                reason=reason,
                cause=ctx.cause,
                tier=tier,
                points_spent=points_spent,
                stamps_spent=stamps_spent,
            ),
        )
    )
    if not notify:
        return step, grant_id
    reward = ctx.program.find_reward(reward_id)
    step, _ = step.notify(
        ctx,
        "reward_granted",
        {
            "grant_id": grant_id,
            "reward_id": reward_id,
            "reward_name": reward.name if reward else reward_id,
            "reason": reason,
            "tier": tier,
        },
    )
    return step, grant_id
