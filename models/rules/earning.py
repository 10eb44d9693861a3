"""What an order earns in points: the earning base (filters, shipping, tax) and the multiplier.

- **Base.** Without item filters the whole order earns: its total less the shipping and tax it
  states (``goods``). With qualifying or excluded skus or categories (``earn`` in the program)
  only the qualifying items earn, each on what it was paid: its unit price times its units,
  less its share of an order-level discount spread over the items in proportion to their price
  (``OrderRecord.items_paid_factor``, the same code the refunds use). An order worth less than
  ``earn.min_order_value`` (its goods) earns no points.
- **Multiplier.** ``earn.multiplier_tier: held`` (default): the tier held before the order.
  ``reached``: the tier the order moves the customer up to by the rules, judged on the order
  counted at the held tier's multiplier (one step, no loop: if the extra points reach a still
  higher tier the customer moves there too, and this order keeps the first one's multiplier).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from models.messages import OrderPaidData
from models.program import Tier
from models.program_earn import EarnRules
from models.rules.base import Context, Step, rank_of
from models.rules.qualification import count
from models.rules.tiers import rules_tier
from models.state import OrderLine, OrderRecord, PointsScope


def mark_lines(
    earn: EarnRules, order: OrderPaidData, lines: tuple[OrderLine, ...]
) -> tuple[tuple[OrderLine, ...], PointsScope]:
    """Record on each line whether it earns points; the scope says what the base is."""
    if not earn.filters_items:
        return lines, "order"
    marked = tuple(
        line.model_copy(update={"earns_points": earn.item_earns(item.sku, item.categories)})
        for line, item in zip(lines, order.items, strict=True)
    )
    return marked, "items"


def points_base(earn: EarnRules, record: OrderRecord) -> Decimal | Fraction:
    """The exact amount the order earns points on (see the module docstring).

    A decimal unless a discount is spread over the qualifying items (then a fraction).
    """
    if record.goods < earn.min_order_value:
        return Decimal(0)
    if record.points_scope == "order":
        return record.goods
    listed = sum(
        (line.unit_price * line.quantity for line in record.lines if line.earns_points),
        Decimal(0),
    )
    factor = record.items_paid_factor
    return listed if factor == 1 else Fraction(listed) * factor


def multiplier_tier(
    step: Step, ctx: Context, base: Decimal | Fraction, spend: Decimal
) -> Tier | None:
    """The tier whose points multiplier the order earns at (``earn.multiplier_tier``)."""
    state, program = step.state, ctx.program
    held = program.find_tier(state.tier) if state.tier is not None else None
    if program.earn.multiplier_tier == "held":
        return held
    at_held = program.earn.points_for(base, multiplier_of(held))
    trial = count(step, ctx, ctx.at, points=at_held, spend=spend, orders=1)
    reached = rules_tier(trial.state, program, ctx.at)
    if reached is not None and reached.rank > rank_of(program, state.tier):
        return reached
    return held


def multiplier_of(tier: Tier | None) -> Decimal:
    """The points multiplier of a tier (1 for no tier)."""
    return tier.points_multiplier if tier is not None else Decimal(1)
