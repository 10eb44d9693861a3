"""Stamps: earned per order or per qualifying item, adjusted by hand, filling stamp cards.

There is one pool of stamps, ``stamps_balance``. When the program has a stamp card, completing
it *spends* the card's stamps: each time the balance reaches ``card_size`` the card reward is
issued and ``card_size`` stamps leave the balance, so the same stamps never pay twice (once for
the card, again for a catalog reward). The balance is therefore always the progress on the
current card; what is below a full card stays spendable on stamp-priced catalog rewards.
Stamps taken back (refund, cancellation, negative adjustment) leave the balance, never below
zero; a completed card keeps its reward (a reversal never takes back an issued reward), and
stamps that were already spent are recorded as a shortfall in the activity.
"""

from __future__ import annotations

from models.messages import AdjustStamps, OrderPaidData
from models.program import Program
from models.rules.base import Context, Rejection, Step, over_deduction
from models.rules.grants import grant_reward, reward_lines
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
    """Add stamps to the balance; each full card spends ``card_size`` and issues the reward."""
    step = step.update(stamps_balance=step.state.stamps_balance + amount)
    rules = ctx.program.stamps
    if rules is None or rules.card_size is None or rules.card_reward is None:
        return step
    while step.state.stamps_balance >= rules.card_size:
        card = step.state.stamp_cards_completed + 1
        step = step.update(
            stamps_balance=step.state.stamps_balance - rules.card_size,
            stamp_cards_completed=card,
        )
        step, grant = grant_reward(step, ctx, rules.card_reward, "stamp_card", key=f"card-{card}")
        step = step.log(
            ctx,
            "stamp_card_completed",
            delta=-rules.card_size,
            customer_note=f"Stamp card {card} completed",
            card=card,
            stamps_spent=rules.card_size,
            reward_id=rules.card_reward,
            grant_id=grant.grant_id,
            balance_after=step.state.stamps_balance,
        )
        # One email per full card: the card and the reward's code.
        step, _ = step.notify(
            ctx,
            "stamp_card_completed",
            {
                "card": card,
                "card_size": rules.card_size,
                "stamps_balance": step.state.stamps_balance,
                "rewards": reward_lines(ctx, [grant]),
            },
        )
    return step


def take_stamps(step: Step, amount: int) -> tuple[Step, int]:
    """Remove up to ``amount`` stamps (never below zero); return the step and what was taken."""
    taken = min(amount, step.state.stamps_balance)
    return step.update(stamps_balance=step.state.stamps_balance - taken), taken


def adjust(step: Step, message: AdjustStamps, ctx: Context) -> Step | Rejection:
    """Add or deduct stamps by hand; a deduction larger than the balance is refused."""
    data = message.data
    balance = step.state.stamps_balance
    if (refusal := over_deduction("stamps", data.delta, balance)) is not None:
        return refusal
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
    step, _ = take_stamps(step, -data.delta)
    return step
