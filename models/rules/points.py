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

from bisect import bisect_left, bisect_right
from datetime import datetime, timedelta
from operator import attrgetter

from models.messages import AdjustPoints, ExpirePoints
from models.outputs import Cause, derive_id
from models.rules import tiers
from models.rules.base import Context, Rejection, Step, over_deduction
from models.rules.periods import add_months, start_of_day
from models.rules.qualification import count
from models.state import PointsLot


def _spend_order(lot: PointsLot) -> tuple[bool, datetime, datetime, str]:
    # Never-expiring lots sort last; earned_at stands in for their (absent) expiry.
    return (lot.expires_at is None, lot.expires_at or lot.earned_at, lot.earned_at, lot.lot_id)


def expiry_after(at: datetime, months: int) -> datetime:
    """When points earned at ``at`` expire: at the end of the same date ``months`` later (UTC).

    Whole days, so all the points a customer earns on one day expire together, in one lot.
    """
    return start_of_day(add_months(at, months).date()) + timedelta(days=1)


def add_lot(
    step: Step, ctx: Context, amount: int, *, expires_at: datetime | None, earned: bool = True
) -> tuple[Step, str]:
    """Add ``amount`` points expiring at ``expires_at``; return the step and the lot's id.

    When ``earned`` they also count toward points earned. See ``insert_lot`` for the lot.
    """
    lot = PointsLot.model_construct(
        lot_id=derive_id(ctx.id_base, "lot"),
        amount=amount,
        original=amount,
        earned_at=ctx.at,
        expires_at=expires_at,
        cause=ctx.cause,
    )
    step, lot_id = _place(step, lot)
    if earned:
        step = record_earned(step, ctx, amount, ctx.at)
    return step, lot_id


def insert_lot(step: Step, lot: PointsLot) -> Step:
    """Add a lot to the spendable balance, in spend order.

    Points that expire at the same moment (or never) share one lot: it keeps the id, cause and
    earned time of the first points put in it. So the customer holds at most one lot per day
    of the expiry period, however many orders.
    """
    step, _ = _place(step, lot)
    return step


def _place(step: Step, lot: PointsLot) -> tuple[Step, str]:
    """Insert ``lot`` in spend order, or add it to the lot with the same expiry; return its id."""
    lots = step.state.points_lots
    expires_at = lot.expires_at
    # Kept in spend order, so spending and expiry read the front and never sort. Points from
    # an order usually expire last of all (same expiry rule, latest date): the end of the list.
    last = lots[-1].expires_at if lots else None
    if lots and last == expires_at:
        index = len(lots) - 1
    elif expires_at is None or not lots or (last is not None and last < expires_at):
        index = -1  # no lot expires then: it would be the last one
    else:
        index = bisect_left(lots, (False, expires_at), key=lambda held: _spend_order(held)[:2])
        if index >= len(lots) or lots[index].expires_at != expires_at:
            index = -1
    balance = step.state.points_balance + lot.amount
    if index >= 0:
        same = lots[index]
        merged = same.model_copy(
            update={"amount": same.amount + lot.amount, "original": same.original + lot.amount}
        )
        placed = (*lots[:index], merged, *lots[index + 1 :])
        return step.update(points_lots=placed, points_balance=balance), same.lot_id
    key = _spend_order(lot)
    if not lots or _spend_order(lots[-1]) <= key:
        placed = (*lots, lot)
    else:
        at = bisect_right(lots, key, key=_spend_order)
        placed = (*lots[:at], lot, *lots[at:])
    return step.update(points_lots=placed, points_balance=balance), lot.lot_id


def record_earned(step: Step, ctx: Context, amount: int, at: datetime) -> Step:
    """Count a signed change to points earned, dated to the period it counts in."""
    return count(step, ctx, at, points=amount)


def take_points(step: Step, amount: int, *, first_lot: str | None = None) -> tuple[Step, int]:
    """Remove up to ``amount`` points (never below zero); return the step and what was taken.

    ``first_lot`` is drained first (a refund takes back the order's own lot before others);
    then lots go in spend order. A lot left empty is dropped.
    """
    lots = list(step.state.points_lots)
    if first_lot is not None and amount > 0:
        ids = list(map(attrgetter("lot_id"), lots))
        if first_lot in ids:
            lots.insert(0, lots.pop(ids.index(first_lot)))
    remaining = amount
    taken_from = 0
    kept: list[PointsLot] = []
    for lot in lots:
        if remaining == 0:
            break
        used = min(lot.amount, remaining)
        remaining -= used
        taken_from += 1
        if lot.amount - used > 0:
            kept.append(lot.model_copy(update={"amount": lot.amount - used}))
    rest = lots[taken_from:]
    # Every lot before the last one touched was emptied: only that one can be kept. It goes
    # back in front, unless it is the refunded order's own lot, pulled forward out of turn.
    for lot in kept:
        if lot.lot_id == first_lot:
            rest.insert(bisect_right(rest, _spend_order(lot), key=_spend_order), lot)
        else:
            rest.insert(0, lot)
    taken = amount - remaining
    return step.update(
        points_lots=tuple(rest), points_balance=step.state.points_balance - taken
    ), taken


def expire_due_lots(step: Step, ctx: Context, cutoff: datetime) -> Step:
    """Expire every lot whose expiry is at or before ``cutoff``, each as its own time event."""
    lots = step.state.points_lots
    gone = 0
    while gone < len(lots) and (ends := lots[gone].expires_at) is not None and ends <= cutoff:
        gone += 1
    if not gone:
        return step
    due = lots[:gone]
    balance = step.state.points_balance
    step = step.update(
        points_lots=lots[gone:], points_balance=balance - sum(lot.amount for lot in due)
    )
    for lot in due:
        assert lot.expires_at is not None  # filtered above; narrows the type
        balance -= lot.amount
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
            balance_after=balance,
        )
        step, _ = step.notify(event, "points_expired", {"points": lot.amount, "balance": balance})
    return step


def adjust(step: Step, message: AdjustPoints, ctx: Context) -> Step | Rejection:
    """Add or deduct points by hand; a deduction larger than the balance is refused."""
    data = message.data
    balance = step.state.points_balance
    if (refusal := over_deduction("points", data.delta, balance)) is not None:
        return refusal
    if data.delta > 0:
        months = data.expires_in_months
        expires_at = expiry_after(ctx.at, months) if months else None
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
