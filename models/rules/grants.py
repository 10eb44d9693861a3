"""Issuing and using reward grants: entry rewards, full stamp cards and redemptions end here.

Every grant gets its code when it is granted (``models.reward_codes``: a keyed hash of the
customer and grant id in the program's format), so a replay gives the same code. A grant sends
no email of its own: the event that granted it (an upgrade, a redemption, a full stamp card)
requests one email that names the reward and its code (``reward_lines``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from models.outputs import RewardGranted, RewardGrantedData, RewardUsed, RewardUsedData
from models.reward_codes import normalize_code, reward_code
from models.reward_value import RewardValue
from models.rules.base import Context, Step
from models.state import GrantOrigin, RewardGrant

GrantReason = Literal["entry", "redeem", "stamp_card"]
_ORIGIN: dict[GrantReason, GrantOrigin] = {
    "entry": "entry",
    "redeem": "redemption",
    "stamp_card": "card",
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
    value: RewardValue | None = None,
) -> tuple[Step, RewardGrant]:
    """Give the customer a reward with its code; return the step and the grant.

    ``key`` tells apart several grants of one cause (the tier entered, the card number ...);
    ``value`` overrides the catalog's (a reward priced as a rate is worth what was spent).
    """
    parts = (reason, reward_id) if key is None else (reason, key, reward_id)
    grant_id = step.output_id(ctx, "grant", *parts)
    customer_id = step.state.customer_id
    reward = ctx.program.find_reward(reward_id)
    valid_days = reward.valid_days if reward is not None else None
    grant = RewardGrant(
        grant_id=grant_id,
        reward_id=reward_id,
        code=reward_code(ctx.code_key, customer_id, grant_id, ctx.program.code_format(reward_id)),
        status="issued",
        origin=_ORIGIN[reason],
        granted_at=ctx.at,
        cause=ctx.cause,
        cost_points=points_spent or None,
        cost_stamps=stamps_spent or None,
        value=value or (reward.value if reward is not None else None),
        valid_until=ctx.at + timedelta(days=valid_days) if valid_days is not None else None,
    )
    step = step.update(rewards=(*step.state.rewards, grant))
    step = step.emit(
        RewardGranted(
            **ctx.envelope(grant_id, customer_id),
            data=RewardGrantedData(
                grant_id=grant_id,
                reward_id=reward_id,
                code=grant.code,
                origin=grant.origin,
                reason=reason,
                cause=ctx.cause,
                tier=tier,
                points_spent=points_spent,
                stamps_spent=stamps_spent,
                value=grant.value,
                valid_until=grant.valid_until,
            ),
        )
    )
    return step, grant


def reward_lines(ctx: Context, grants: list[RewardGrant]) -> list[dict[str, Any]]:
    """Describe grants for an email: the reward's name and the code to show at checkout."""
    lines = []
    for grant in grants:
        reward = ctx.program.find_reward(grant.reward_id)
        lines.append(
            {
                "grant_id": grant.grant_id,
                "reward_id": grant.reward_id,
                "reward_name": reward.name if reward else grant.reward_id,
                "description": reward.description if reward else None,
                "code": grant.code,
                "value": grant.value.model_dump(mode="json") if grant.value else None,
                "valid_until": grant.valid_until.isoformat() if grant.valid_until else None,
            }
        )
    return lines


def use_codes(
    step: Step, ctx: Context, codes: tuple[str, ...], order_id: str
) -> tuple[Step, tuple[str, ...]]:
    """Mark the customer's issued grants with these codes ``used`` on this order.

    Returns the step and the ids of the grants used. A code that is unknown, another
    customer's, already used or revoked, or expired (past its ``valid_until``) never refuses
    the order: it is recorded on the activity (``reward_code_not_used``) with the reason.
    """
    used_ids: list[str] = []
    for code in dict.fromkeys(normalize_code(c) for c in codes):
        grant = step.state.grant_by_code(code)
        # Expiry is judged at the order's business time, so a replay decides the same way.
        expired = (
            grant is not None and grant.valid_until is not None and grant.valid_until <= ctx.at
        )
        if grant is None or grant.status != "issued" or expired:
            if grant is None:
                reason = "no reward of this customer has this code"
            elif grant.status != "issued":
                reason = f"the reward was already {grant.status}"
            else:
                reason = f"the reward expired at {grant.valid_until:%Y-%m-%d %H:%M} UTC"
            step = step.log(
                ctx,
                "reward_code_not_used",
                order_id=order_id,
                code=code,
                grant_id=grant.grant_id if grant else None,
                reason=reason,
            )
            continue
        used_ids.append(grant.grant_id)
        used = grant.model_copy(
            update={"status": "used", "used_at": ctx.at, "used_on_order": order_id}
        )
        step = step.update(
            rewards=tuple(used if g.grant_id == grant.grant_id else g for g in step.state.rewards)
        )
        step = step.emit(
            RewardUsed(
                **ctx.envelope(
                    step.output_id(ctx, "reward.used", grant.grant_id), step.state.customer_id
                ),
                data=RewardUsedData(
                    grant_id=grant.grant_id,
                    reward_id=grant.reward_id,
                    code=grant.code,
                    order_id=order_id,
                    cause=ctx.cause,
                ),
            )
        )
        step = step.log(
            ctx,
            "reward_used",
            customer_note=f"Reward used on order {order_id}",
            order_id=order_id,
            grant_id=grant.grant_id,
            reward_id=grant.reward_id,
            code=grant.code,
        )
    return step, tuple(used_ids)
