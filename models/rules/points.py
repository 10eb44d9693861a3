"""Points: lots with optional expiry, spending, reversal, expiry and admin adjustments.

Rules chosen here (see docs/domain.md):

- Spending consumes lots in order of expiry, soonest first; lots that never expire go last;
  ties go to the oldest lot.
- A negative adjustment larger than the balance is refused (nothing is deducted), naming the
  balance and the delta; the admin can deduct the balance exactly instead.
- Adjustments count toward points earned (the tier metric) with their sign; spending and
  expiry do not.
"""

from __future__ import annotations

from datetime import datetime

from models.messages import AdjustPoints, ExpirePoints
from models.outputs import Cause, derive_id
from models.rules import tiers
from models.rules.base import Context, Rejection, Step, over_deduction
from models.rules.periods import add_months
from models.state import EarnedEntry, PointsLot


def _spend_order(lot: PointsLot) -> tuple[bool, datetime, datetime, str]:
    # Never-expiring lots sort last; earned_at stands in for their (absent) expiry.
    return (lot.expires_at is None, lot.expires_at or lot.earned_at, lot.earned_at, lot.lot_id)


def add_lot(
    step: Step, ctx: Context, amount: int, *, expires_at: datetime | None, earned: bool = True
) -> tuple[Step, str]:
    """Add a lot of ``amount`` points; when ``earned`` it also counts toward points earned."""
    lot_id = derive_id(ctx.id_base, "lot")
    lot = PointsLot(
        lot_id=lot_id,
        amount=amount,
        original=amount,
        earned_at=ctx.at,
        expires_at=expires_at,
        cause=ctx.cause,
    )
    step = step.update(points_lots=(*step.state.points_lots, lot))
    if earned:
        step = record_earned(step, ctx, amount, ctx.at)
    return step, lot_id


def record_earned(step: Step, ctx: Context, amount: int, at: datetime) -> Step:
    """Add a signed entry to the points-earned ledger, dated to the period it counts in."""
    entry = EarnedEntry(at=at, amount=amount, cause=ctx.cause)
    return step.update(points_earned_log=(*step.state.points_earned_log, entry))


def take_points(step: Step, amount: int, *, first_lot: str | None = None) -> tuple[Step, int]:
    """Remove up to ``amount`` points (never below zero); return the step and what was taken.

    ``first_lot`` is drained first (a refund takes back the order's own lot before others).
    """
    lots = sorted(step.state.points_lots, key=_spend_order)
    if first_lot is not None:
        lots.sort(key=lambda lot: lot.lot_id != first_lot)  # stable: keeps the spend order
    remaining = amount
    kept: list[PointsLot] = []
    for lot in lots:
        used = min(lot.amount, remaining)
        remaining -= used
        if lot.amount - used > 0:
            kept.append(lot.model_copy(update={"amount": lot.amount - used}))
    order = {lot.lot_id: index for index, lot in enumerate(step.state.points_lots)}
    kept.sort(key=lambda lot: order[lot.lot_id])
    return step.update(points_lots=tuple(kept)), amount - remaining


def expire_due_lots(step: Step, ctx: Context, cutoff: datetime) -> Step:
    """Expire every lot whose expiry is at or before ``cutoff``, each as its own time event."""
    due = [
        lot
        for lot in step.state.points_lots
        if lot.expires_at is not None and lot.expires_at <= cutoff
    ]
    if not due:
        return step
    due_ids = {lot.lot_id for lot in due}
    step = step.update(
        points_lots=tuple(lot for lot in step.state.points_lots if lot.lot_id not in due_ids)
    )
    for lot in sorted(due, key=_spend_order):
        assert lot.expires_at is not None  # filtered above; narrows the type
        event = ctx.caused_by(
            Cause(type="points.expire", id=derive_id(lot.lot_id, "expire")), lot.expires_at
        )
        step = step.log(
            event,
            "points_expired",
            delta=-lot.amount,
            customer_note=f"{lot.amount} points expired",
            lot_id=lot.lot_id,
            earned_at=lot.earned_at.isoformat(),
            balance_after=step.state.points_balance,
        )
        step, _ = step.notify(
            event,
            "points_expired",
            {"points": lot.amount, "balance": step.state.points_balance},
        )
    return step


def adjust(step: Step, message: AdjustPoints, ctx: Context) -> Step | Rejection:
    """Add or deduct points by hand; a deduction larger than the balance is refused."""
    data = message.data
    balance = step.state.points_balance
    if (refusal := over_deduction("points", data.delta, balance)) is not None:
        return refusal
    if data.delta > 0:
        expires_at = add_months(ctx.at, data.expires_in_months) if data.expires_in_months else None
        step, lot_id = add_lot(step, ctx, data.delta, expires_at=expires_at)
        details: dict[str, object] = {
            "lot_id": lot_id,
            "expires_at": expires_at.isoformat() if expires_at else None,
        }
    else:
        step, _ = take_points(step, -data.delta)
        step = record_earned(step, ctx, data.delta, ctx.at)
        details = {}
    step = step.log(
        ctx,
        "points_adjusted",
        delta=data.delta,
        internal_note=data.internal_note,
        customer_note=data.customer_note,
        balance_after=step.state.points_balance,
        **details,
    )
    return tiers.evaluate(step, ctx)


def expire(step: Step, message: ExpirePoints, ctx: Context) -> Step:
    """Scheduled expiry: lots due by ``due_at`` expire (a no-op when none are)."""
    return expire_due_lots(step, ctx, min(message.data.due_at, ctx.at))
