"""Rewards: redeeming catalog rewards with points or stamps, and revoking unused grants.

A redemption spends the cost (points from the soonest-expiring lots first) and issues a grant
with origin ``redemption`` and its code: it emits ``reward.redeemed`` (the spend) and
``reward.granted`` (reason ``redeem``, with the code) and requests one email (the reward and
its code). Revoking takes back an issued grant; a used or revoked one is refused. Revoking a
redemption gives back what was spent on it (points as a new lot that never expires and does
not count as earned; stamps back into the one pool, where they complete a stamp card if the
balance reaches a full card).
"""

from __future__ import annotations

from models.messages import RedeemReward, RevokeReward
from models.outputs import RewardRedeemed, RewardRedeemedData, RewardRevoked, RewardRevokedData
from models.program import Reward
from models.reward_value import RewardValue
from models.rules.base import Context, Rejection, Step
from models.rules.grants import grant_reward, reward_lines
from models.rules.points import add_lot, take_points
from models.rules.stamps import add_stamps, take_stamps
from models.values import format_decimal


def redeem(step: Step, message: RedeemReward, ctx: Context) -> Step | Rejection:
    """Spend points or stamps on a catalog reward; refused when the balance is short."""
    data = message.data
    reward = ctx.program.find_reward(data.reward_id)
    if reward is None:
        priced = [
            _priced(r)
            for r in ctx.program.rewards
            if r.cost_points or r.cost_stamps or r.points_rate
        ]
        return Rejection(
            code="unknown_reward",
            reason=f"unknown reward {data.reward_id!r}; rewards that can be redeemed: "
            f"{', '.join(priced) or '(none)'}",
        )
    state = step.state
    price = _price(reward, data.points, state.points_balance, ctx)
    if isinstance(price, Rejection):
        return price
    points, stamps, value = price
    if not points and not stamps:
        return Rejection(
            code="reward_not_redeemable",
            reason=f"reward {reward.reward_id!r} has no cost in points or stamps; it is only "
            "granted (entry or card reward), not redeemed",
        )
    if points > state.points_balance:
        return Rejection(
            code="insufficient_points",
            reason=f"reward {reward.reward_id!r} costs {points} points; the balance is "
            f"{state.points_balance}",
        )
    if stamps > state.stamps_balance:
        return Rejection(
            code="insufficient_stamps",
            reason=f"reward {reward.reward_id!r} costs {stamps} stamps; the balance is "
            f"{state.stamps_balance}",
        )
    step, _ = take_points(step, points)
    step, _ = take_stamps(step, stamps)
    step, grant = grant_reward(
        step,
        ctx,
        reward.reward_id,
        "redeem",
        points_spent=points,
        stamps_spent=stamps,
        value=value,
    )
    grant_id = grant.grant_id
    step = step.emit(
        RewardRedeemed(
            **ctx.envelope(step.output_id(ctx, "reward.redeemed"), state.customer_id),
            data=RewardRedeemedData(
                grant_id=grant_id,
                reward_id=reward.reward_id,
                cause=ctx.cause,
                points_spent=points,
                stamps_spent=stamps,
            ),
        )
    )
    step, _ = step.notify(
        ctx,
        "reward_redeemed",
        {
            "reward_id": reward.reward_id,
            "reward_name": reward.name,
            "grant_id": grant_id,
            "code": grant.code,
            "points_spent": points,
            "stamps_spent": stamps,
            "rewards": reward_lines(ctx, [grant]),
        },
    )
    unit = "points" if points else "stamps"
    return step.log(
        ctx,
        "reward_redeemed",
        delta=-(points or stamps),
        internal_note=data.internal_note,
        customer_note=f"Redeemed {reward.name} for {points or stamps} {unit}",
        reward_id=reward.reward_id,
        grant_id=grant_id,
        points_spent=points,
        stamps_spent=stamps,
        value=grant.value.model_dump(mode="json") if grant.value else None,
    )


def _price(
    reward: Reward, asked: int | None, balance: int, ctx: Context
) -> tuple[int, int, RewardValue | None] | Rejection:
    """What a redemption spends (points, stamps) and, for a rate, the value it buys."""
    rate = reward.points_rate
    if rate is not None:
        if (problem := rate.problem(asked, balance)) is not None or asked is None:
            code, hint = problem or ("points_required", "send points")
            return Rejection(
                code=code,
                reason=f"reward {reward.reward_id!r} is priced at {rate.points} points for "
                f"{format_decimal(rate.amount)} {ctx.program.currency} off; {hint}",
            )
        return asked, 0, rate.value_of(asked)
    points = reward.cost_points or 0
    if asked is not None and asked != points:
        return Rejection(
            code="points_not_accepted",
            reason=f"reward {reward.reward_id!r} has a fixed price"
            + (f" of {points} points" if points else "")
            + "; leave points out (points is only for rewards priced with points_rate)",
        )
    return points, reward.cost_stamps or 0, None


def _priced(reward: Reward) -> str:
    if reward.cost_points:
        return f"{reward.reward_id} ({reward.cost_points} points)"
    if reward.cost_stamps:
        return f"{reward.reward_id} ({reward.cost_stamps} stamps)"
    step = reward.points_rate.points if reward.points_rate else 0
    return f"{reward.reward_id} (points in steps of {step})"


def revoke(step: Step, message: RevokeReward, ctx: Context) -> Step | Rejection:
    """Remove an issued, unused reward; anything else is refused with its status."""
    data = message.data
    grant = step.state.grant(data.grant_id)
    if grant is None:
        unused = [g.grant_id for g in step.state.rewards if g.status == "issued"]
        hint = (
            f"grants that can be revoked (latest first, at most 5): {', '.join(unused[:-6:-1])}"
            if unused
            else "the customer has no unused grant to revoke"
        )
        return Rejection(
            code="unknown_grant",
            reason=f"the customer holds no reward with grant id {data.grant_id!r}; {hint}",
        )
    if grant.status != "issued":
        used = f" on order {grant.used_on_order}" if grant.used_on_order else ""
        return Rejection(
            code="grant_not_revocable",
            reason=f"grant {grant.grant_id!r} is {grant.status}{used}; only an issued, unused "
            "reward can be revoked",
        )
    rewards = tuple(
        g.model_copy(update={"status": "revoked"}) if g.grant_id == grant.grant_id else g
        for g in step.state.rewards
    )
    step = step.update(rewards=rewards)
    refunded_points, refunded_stamps = 0, 0
    if grant.origin == "redemption":
        refunded_points, refunded_stamps = grant.cost_points or 0, grant.cost_stamps or 0
        if refunded_points:
            step, _ = add_lot(step, ctx, refunded_points, expires_at=None, earned=False)
    step = step.emit(
        RewardRevoked(
            **ctx.envelope(step.output_id(ctx, "reward.revoked"), step.state.customer_id),
            data=RewardRevokedData(
                grant_id=grant.grant_id, reward_id=grant.reward_id, cause=ctx.cause
            ),
        )
    )
    step, _ = step.notify(
        ctx, "reward_revoked", {"reward_id": grant.reward_id, "grant_id": grant.grant_id}
    )
    step = step.log(
        ctx,
        "reward_revoked",
        internal_note=data.internal_note,
        delta=refunded_points or refunded_stamps or None,
        reward_id=grant.reward_id,
        grant_id=grant.grant_id,
        points_returned=refunded_points,
        stamps_returned=refunded_stamps,
    )
    return add_stamps(step, ctx, refunded_stamps) if refunded_stamps else step
