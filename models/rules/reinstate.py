"""Rewards used on an order come back when that order no longer stands.

When an order that carried reward codes (``order.paid`` ``reward_codes``) is cancelled or
refunded in full, each grant used on it returns to ``issued`` with the same code: a
``reward.reinstated`` output and a ``reward_reinstated`` activity entry with the reason. A
partial refund leaves the grants used: the order still stands, and the reward was part of it.

The one exception is a grant that no longer stands itself: an entry reward whose own order (the
order that reached its tier) was cancelled or refunded in full while the reward was used
(``RewardGrant.withdrawn``). Giving it back would hand out the reward of a tier bought and
returned, so it is revoked instead, as it would have been had it been unused then.

Only the order's own record is read (``OrderRecord.used_grants``), never another order.
"""

from __future__ import annotations

from models.outputs import RewardReinstated, RewardReinstatedData
from models.rules.base import Context, Step
from models.rules.reversal import revoke_entry_grant
from models.state import OrderRecord, RewardGrant


def reinstate_used_rewards(step: Step, ctx: Context, record: OrderRecord) -> Step:
    """Give back (or revoke, if withdrawn) every grant used on an order that just fell."""
    for grant_id in record.used_grants:
        grant = step.state.grant(grant_id)
        if grant is None or grant.status != "used" or grant.used_on_order != record.order_id:
            continue
        if grant.withdrawn is not None:
            reason = (
                f"order {record.order_id}, on which it was used, no longer stands, and the "
                f"order {grant.withdrawn.order_id} that reached {grant.withdrawn.tier} no "
                "longer stands either: the reward is revoked, not given back"
            )
            step = revoke_entry_grant(
                step,
                ctx,
                grant,
                tier=grant.withdrawn.tier,
                order_id=record.order_id,
                reason=reason,
            )
            continue
        step = _reinstate(step, ctx, grant, record.order_id)
    return step


def _reinstate(step: Step, ctx: Context, grant: RewardGrant, order_id: str) -> Step:
    back = grant.model_copy(update={"status": "issued", "used_at": None, "used_on_order": None})
    step = step.update(
        rewards=tuple(back if g.grant_id == grant.grant_id else g for g in step.state.rewards)
    )
    reason = (
        f"order {order_id}, on which the reward was used, was cancelled or refunded in full; "
        "the same code can be used again"
    )
    step = step.emit(
        RewardReinstated(
            **ctx.envelope(
                step.output_id(ctx, "reward.reinstated", grant.grant_id), step.state.customer_id
            ),
            data=RewardReinstatedData(
                grant_id=grant.grant_id,
                reward_id=grant.reward_id,
                code=grant.code,
                order_id=order_id,
                reason=reason,
                cause=ctx.cause,
            ),
        )
    )
    return step.log(
        ctx,
        "reward_reinstated",
        customer_note=f"Reward given back: order {order_id} was returned",
        order_id=order_id,
        grant_id=grant.grant_id,
        reward_id=grant.reward_id,
        code=grant.code,
        reason=reason,
    )
