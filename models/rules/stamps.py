"""Stamps: earned per order or per qualifying item, adjusted by hand, filling stamp cards.

A stamp card is a milestone, not a purse: every ``card_size`` stamps collected grant the card
reward once, and the stamps stay spendable on catalog rewards. Stamps taken back (refund,
negative adjustment) also come off the current card, never below an empty card; cards already
completed keep their reward.
"""

from __future__ import annotations

from models.messages import AdjustStamps, OrderPaidData
from models.program import Program
from models.rules.base import Context, Rejection, Step
from models.rules.grants import grant_reward
from models.state import OrderLine


def order_lines(program: Program, order: OrderPaidData) -> tuple[int, tuple[OrderLine, ...]]:
    """Stamps the order earns by today's rules, and its lines with stamps per unit recorded."""
    rules = program.stamps
    earns = rules is not None and order.total >= rules.min_order_value
    lines = []
    for item in order.items:
        per_unit = 0
        if earns and rules is not None and rules.mode == "per_qualifying_item":
            per_unit = rules.stamps_per_item if rules.qualifies(item.sku, item.categories) else 0
        lines.append(
            OrderLine(
                sku=item.sku,
                quantity=item.quantity,
                unit_price=item.unit_price,
                stamps_per_unit=per_unit,
            )
        )
    if not earns or rules is None:
        return 0, tuple(lines)
    if rules.mode == "per_order":
        return rules.stamps_per_order, tuple(lines)
    return sum(line.stamps_per_unit * line.quantity for line in lines), tuple(lines)


def add_stamps(step: Step, ctx: Context, amount: int) -> Step:
    """Add stamps to the balance and the card; each full card grants the card reward."""
    state = step.state
    progress = state.stamp_card_progress + amount
    completed = state.stamp_cards_completed
    step = step.update(stamps_balance=state.stamps_balance + amount)
    rules = ctx.program.stamps
    if rules is None or rules.card_size is None or rules.card_reward is None:
        return step.update(stamp_card_progress=progress)
    while progress >= rules.card_size:
        progress -= rules.card_size
        completed += 1
        step = step.update(stamp_card_progress=progress, stamp_cards_completed=completed)
        step, grant_id = grant_reward(
            step, ctx, rules.card_reward, "stamp_card", key=f"card-{completed}"
        )
        step = step.log(
            ctx,
            "stamp_card_completed",
            customer_note=f"Stamp card {completed} completed",
            card=completed,
            reward_id=rules.card_reward,
            grant_id=grant_id,
        )
    return step.update(stamp_card_progress=progress)


def take_stamps(step: Step, amount: int, *, uncollect: bool) -> tuple[Step, int]:
    """Remove up to ``amount`` stamps (never below zero); ``uncollect`` also empties the card."""
    state = step.state
    taken = min(amount, state.stamps_balance)
    changes: dict[str, int] = {"stamps_balance": state.stamps_balance - taken}
    if uncollect:
        changes["stamp_card_progress"] = max(0, state.stamp_card_progress - taken)
    return step.update(**changes), taken


def adjust(step: Step, message: AdjustStamps, ctx: Context) -> Step | Rejection:
    """Add or deduct stamps by hand; a deduction larger than the balance is refused."""
    data = message.data
    balance = step.state.stamps_balance
    if data.delta < 0 and -data.delta > balance:
        return Rejection(
            code="insufficient_stamps",
            reason=(
                f"cannot deduct {-data.delta} stamps: the balance is {balance} "
                f"(delta {data.delta}); deduct at most {balance}"
            ),
        )
    step = step.log(
        ctx,
        "stamps_adjusted",
        delta=data.delta,
        internal_note=data.internal_note,
        customer_note=data.customer_note,
        balance_after=balance + data.delta,
    )
    if data.delta > 0:
        return add_stamps(step, ctx, data.delta)
    step, _ = take_stamps(step, -data.delta, uncollect=True)
    return step
