"""Orders: paying earns points and stamps; refunds and cancellations reverse what was earned.

Each paid order keeps a record of exactly what it earned. A refund reverses a share of those
recorded values, never today's rules: after refunds totalling R of an order of total T the
order has reversed ``floor(earned * R / T)`` points (all of them once R reaches T), so partial
refunds round in the customer's favour, a later refund never reverses more than is left, and
refunding everything reverses everything. Points come back out of the balance only down to
zero (a shortfall, already spent, is recorded in the activity); points *earned* always drop by
the full reversed amount, dated to the order, so the tier sees the order shrink.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from models.messages import OrderCancelled, OrderPaid, OrderRefunded, RefundItem
from models.rules import earning, stamps, tiers
from models.rules.base import Context, Duplicate, Rejection, Step
from models.rules.grants import use_codes
from models.rules.pending import add_pending, take_order_points
from models.rules.points import add_lot, expiry_after
from models.rules.qualification import count
from models.rules.reinstate import reinstate_used_rewards
from models.rules.reversal import record_triggers, undo_triggers
from models.rules.tier_commands import manage_tier
from models.state import OrderLine, OrderRecord, TierSnapshot
from models.values import MONEY_MAX_DECIMALS, format_decimal


def paid(step: Step, message: OrderPaid, ctx: Context) -> Step | Rejection | Duplicate:
    """Earn points (filters, tier multiplier, program rounding) and stamps; count the order."""
    data = message.data
    state, program = step.state, ctx.program
    if state.order(data.order_id) is not None:
        return Duplicate(reason=f"order {data.order_id} was already paid")
    if data.currency != program.currency:
        # Earning 1 point per USD in a EUR program, and adding USD to EUR spend, is wrong money.
        return Rejection(
            code="currency_mismatch",
            reason=f"order {data.order_id} is in {data.currency}, but the program counts "
            f"{program.currency}; convert the total and prices to {program.currency} and "
            "resend with a new message id",
        )
    # Codes first: a reward this order is about to grant was not the customer's at checkout.
    step, used_grants = use_codes(step, ctx, data.reward_codes, data.order_id)
    stamp_count, lines = stamps.order_lines(program, data)
    lines, scope = earning.mark_lines(program.earn, data, lines)
    record = OrderRecord(
        order_id=data.order_id,
        paid_at=ctx.at,
        total=data.total,
        currency=data.currency,
        lines=lines,
        points_scope=scope,
        points_earned=0,
        stamps_earned=stamp_count,
        used_grants=used_grants,
        shipping=data.shipping or Decimal(0),
        tax=data.tax or Decimal(0),
    )
    base = earning.points_base(program.earn, record)
    multiplier_tier = earning.multiplier_tier(step, ctx, base, data.total)
    multiplier = earning.multiplier_of(multiplier_tier)
    points = program.earn.points_for(base, multiplier)
    step, record, pending = _earn(step, ctx, record, points)
    step = step.update(orders=(*step.state.orders, record))
    step = count(step, ctx, ctx.at, points=points, spend=data.total, orders=1)
    stamp_items = [
        {"sku": line.sku, "quantity": line.quantity, "stamps": line.stamps_per_unit * line.quantity}
        for line in lines
        if line.stamps_per_unit
    ]
    step = step.log(
        ctx,
        "order_paid",
        delta=points,
        customer_note=f"Order {data.order_id}: {points} points, {stamp_count} stamps",
        order_id=data.order_id,
        total=format_decimal(data.total),
        currency=data.currency,
        points=points,
        points_base=format_decimal(_money_floor(base)),
        points_multiplier=format_decimal(multiplier),
        points_multiplier_tier=multiplier_tier.name if multiplier_tier else None,
        points_pending_until=pending.isoformat() if pending else None,
        items_without_points=[line.sku for line in lines if not line.earns_points],
        stamps=stamp_count,
        stamp_items=stamp_items,
    )
    if stamp_count:
        step = stamps.add_stamps(step, ctx, stamp_count)
    before, rules_from = TierSnapshot.of(step.state), len(step.outputs)
    step = tiers.evaluate(step, ctx)
    automations_from = len(step.outputs)
    step = _run_automations(step, message, ctx)
    return record_triggers(step, data.order_id, before, rules_from, automations_from)


def _earn(
    step: Step, ctx: Context, record: OrderRecord, points: int
) -> tuple[Step, OrderRecord, datetime | None]:
    """Put the order's points in a lot, or pending for the program's window; count them."""
    if points <= 0:
        return step, record, None
    earn = ctx.program.earn
    if earn.points_pending_days is None:
        months = earn.points_expire_after_months
        expires_at = expiry_after(ctx.at, months) if months else None
        step, lot_id = add_lot(step, ctx, points, expires_at=expires_at, earned=False)
        confirm_at = None
    else:
        confirm_at = ctx.at + timedelta(days=earn.points_pending_days)
        months = earn.points_expire_after_months
        # The points' validity starts when they can be spent.
        expires_at = expiry_after(confirm_at, months) if months else None
        step, lot_id = add_pending(
            step,
            ctx,
            points,
            order_id=record.order_id,
            confirm_at=confirm_at,
            expires_at=expires_at,
        )
    record = record.model_copy(update={"points_earned": points, "points_lot_id": lot_id})
    return step, record, confirm_at


def _money_floor(amount: Decimal | Fraction) -> Decimal:
    if isinstance(amount, Decimal):
        return amount
    units = math.floor(amount * 10**MONEY_MAX_DECIMALS)
    return Decimal(units).scaleb(-MONEY_MAX_DECIMALS).normalize()


def _run_automations(step: Step, message: OrderPaid, ctx: Context) -> Step:
    """Run every program automation the order matches; a refused one is logged, not fatal."""
    for automation in ctx.program.automations:
        if not automation.matches(message.data):
            continue
        action = automation.manage_tier
        fields = {**message.data.extended_fields, **action.extended_fields}
        outcome = manage_tier(step, action.model_copy(update={"extended_fields": fields}), ctx)
        if isinstance(outcome, Rejection):
            step = step.log(
                ctx,
                "automation_refused",
                automation=automation.name,
                code=outcome.code,
                reason=outcome.reason,
            )
        else:
            step = outcome
    return step


def _floor_share(earned: int, share: Fraction) -> int:
    return earned if share >= 1 else math.floor(earned * share)


def _money_refunded(record: OrderRecord) -> Decimal:
    """The refunded share of the total in money, rounded down to the money precision."""
    share = record.refunded_share
    if share >= 1:
        return record.total
    return min(record.total, _floor_money(Fraction(record.total) * share, record.total))


def _floor_money(exact: Fraction, like: Decimal) -> Decimal:
    """An exact amount rounded down to the money precision, written with ``like``'s decimals.

    Integer arithmetic, so no decimal context can round it; ``like`` (the order total) only
    sets how it is written when it fits (40.00, not 40.0000).
    """
    units = math.floor(exact * 10**MONEY_MAX_DECIMALS)
    money = Decimal(units).scaleb(-MONEY_MAX_DECIMALS)
    places = Decimal(1).scaleb(min(0, int(like.as_tuple().exponent)))
    tidy = money.quantize(places)
    return tidy if tidy == money else money


def refunded(step: Step, message: OrderRefunded, ctx: Context) -> Step | Rejection | Duplicate:
    """Reverse the refunded share of what the order earned (by amount, by items, or all)."""
    data = message.data
    record = step.state.order(data.order_id)
    if record is None:
        return _unknown_order(data.order_id)
    if data.refund_id in record.refund_ids:
        return Duplicate(reason=f"refund {data.refund_id} of order {data.order_id} was applied")
    if record.fully_reversed:
        return Rejection(
            code="nothing_to_refund",
            reason=f"order {data.order_id} is already refunded in full or cancelled",
        )
    update: dict[str, object] = {"refund_ids": (*record.refund_ids, data.refund_id)}
    if data.items is not None:
        priced = _refund_items(record, data.items)
        if isinstance(priced, Rejection):
            return priced
        requested, update["lines"] = priced
    elif data.amount is not None:
        requested = data.amount
        left = record.total - record.refunded_amount
        update["refunded_by_amount"] = record.refunded_by_amount + min(data.amount, left)
    else:
        requested = record.total - record.refunded_amount
        update["refunded_in_full"] = True
        update["lines"] = tuple(
            line.model_copy(update={"refunded_quantity": line.quantity}) for line in record.lines
        )
    before = record.refunded_amount
    record = record.model_copy(update=update)
    record = record.model_copy(update={"refunded_amount": _money_refunded(record)})
    return _reverse(
        step,
        ctx,
        record,
        record.refunded_amount - before,
        "order_refunded",
        refund_id=data.refund_id,
        amount_requested=format_decimal(requested),
    )


def _refund_items(
    record: OrderRecord, items: tuple[RefundItem, ...]
) -> tuple[Decimal, tuple[OrderLine, ...]] | Rejection:
    """Mark refunded units on the lines, capped at what is left of each line.

    Returns what the units were paid after the order's discount (their price times the
    record's ``items_paid_factor``). An sku on several lines (say, two prices) is refunded
    from its first line with units left.
    """
    lines = list(record.lines)
    listed = Decimal(0)
    for item in items:
        indexes = [n for n, line in enumerate(lines) if line.sku == item.sku]
        if not indexes:
            known = ", ".join(dict.fromkeys(line.sku for line in lines)) or "(none)"
            return Rejection(
                code="unknown_item",
                reason=f"order {record.order_id} has no item {item.sku!r}; its items: {known}",
            )
        wanted = item.quantity
        for n in indexes:
            line = lines[n]
            quantity = min(wanted, line.quantity - line.refunded_quantity)
            wanted -= quantity
            listed += line.unit_price * quantity
            lines[n] = line.model_copy(
                update={"refunded_quantity": line.refunded_quantity + quantity}
            )
    return _floor_money(Fraction(listed) * record.items_paid_factor, record.total), tuple(lines)


def cancelled(step: Step, message: OrderCancelled, ctx: Context) -> Step | Rejection | Duplicate:
    """Reverse everything the order earned that no refund has reversed yet."""
    record = step.state.order(message.data.order_id)
    if record is None:
        return _unknown_order(message.data.order_id)
    if record.cancelled:
        return Duplicate(reason=f"order {record.order_id} was already cancelled")
    amount = max(Decimal(0), record.total - record.refunded_amount)
    lines = tuple(ln.model_copy(update={"refunded_quantity": ln.quantity}) for ln in record.lines)
    record = record.model_copy(
        update={"cancelled": True, "lines": lines, "refunded_amount": record.total}
    )
    return _reverse(step, ctx, record, amount, "order_cancelled")


def _unknown_order(order_id: str) -> Rejection:
    return Rejection(
        code="unknown_order",
        reason=f"no paid order {order_id!r} for this customer; nothing was reversed",
    )


def _stamps_target(record: OrderRecord, share: Fraction) -> int:
    """Stamps the order has reversed once this share of it is refunded.

    Stamps earned by items come back with those items (a refund naming other items takes
    none); a refund by amount names no items, so it takes the item stamps pro rata. Stamps
    earned by the order as a whole (per-order stamps) follow the order's refunded share.
    """
    if share >= 1:
        return record.stamps_earned
    item_stamps = sum(line.stamps_per_unit * line.quantity for line in record.lines)
    named = sum(line.stamps_per_unit * line.refunded_quantity for line in record.lines)
    by_amount = (
        Fraction(record.refunded_by_amount) / Fraction(record.total) if record.total > 0 else 0
    )
    items_part = min(item_stamps, named + math.floor(item_stamps * by_amount))
    order_part = _floor_share(max(0, record.stamps_earned - item_stamps), share)
    return min(record.stamps_earned, items_part + order_part)


def _reverse(
    step: Step, ctx: Context, record: OrderRecord, amount: Decimal, kind: str, **details: str
) -> Step:
    """Take back the points and stamps the updated record says are now reversed."""
    share = record.refunded_share
    points_target = _floor_share(record.points_earned, record.points_share)
    stamps_target = max(record.stamps_reversed, _stamps_target(record, share))
    points = points_target - record.points_reversed
    stamp_count = stamps_target - record.stamps_reversed
    record = record.model_copy(
        update={"points_reversed": points_target, "stamps_reversed": stamps_target}
    )
    before = step.state.order(record.order_id)
    stopped_counting = record.fully_reversed and before is not None and not before.fully_reversed
    orders = tuple(record if o.order_id == record.order_id else o for o in step.state.orders)
    step = step.update(orders=orders)
    step, pending_taken, balance_taken = take_order_points(step, points, record.points_lot_id)
    points_taken = pending_taken + balance_taken
    # Dated to the order: the refund shrinks the period that counted the order.
    step = count(
        step, ctx, record.paid_at, points=-points, spend=-amount, orders=-int(stopped_counting)
    )
    step, stamps_taken = stamps.take_stamps(step, stamp_count)
    step = step.log(
        ctx,
        kind,
        delta=-balance_taken,
        customer_note=f"Order {record.order_id}: {points_taken} points and {stamps_taken} "
        "stamps reversed",
        points_pending_removed=pending_taken,
        order_id=record.order_id,
        amount=format_decimal(amount),
        points_reversed=points,
        points_shortfall=points - points_taken,
        stamps_reversed=stamp_count,
        stamps_shortfall=stamp_count - stamps_taken,
        **details,
    )
    step = undo_triggers(step, ctx, record)
    return reinstate_used_rewards(step, ctx, record) if stopped_counting else step
