"""Pending points: what an order earns is not spendable until the return window has passed.

With ``earn.points_pending_days: N`` the points of an order are *pending* for N days after
payment: counted in ``points_pending``, not in the spendable ``points_balance``. At the end of
the window a time event (``points.confirm``, or any later message, which settles due times
first with the same ids) confirms them: they become a points lot with the same id, expiring
``points_expire_after_months`` after the confirmation. A refund or cancellation inside the
window takes the order's pending points first, then (for what is left to take) the balance.

Pending points count toward tiers from the payment, like the order's spend and count: the
order is real, and its reversal takes back the tier it reached as any reversal does. Only
spending waits for the window.
"""

from __future__ import annotations

from datetime import datetime

from models.messages import ConfirmPoints
from models.outputs import Cause, derive_id
from models.rules.base import Context, Step
from models.rules.points import insert_lot, take_points
from models.state import PendingPoints, PointsLot


def add_pending(
    step: Step,
    ctx: Context,
    amount: int,
    *,
    order_id: str,
    confirm_at: datetime,
    expires_at: datetime | None,
) -> tuple[Step, str]:
    """Hold an order's points as pending until ``confirm_at``; return the step and lot id."""
    lot_id = derive_id(ctx.id_base, "lot")
    entry = PendingPoints(
        lot_id=lot_id,
        order_id=order_id,
        amount=amount,
        earned_at=ctx.at,
        confirm_at=confirm_at,
        expires_at=expires_at,
        cause=ctx.cause,
    )
    pending = sorted((*step.state.points_pending_lots, entry), key=lambda p: p.confirm_at)
    step = step.update(
        points_pending_lots=tuple(pending), points_pending=step.state.points_pending + amount
    )
    return step, lot_id


def confirm_due(step: Step, ctx: Context, cutoff: datetime) -> Step:
    """Confirm every pending entry due by ``cutoff``, each as its own time event."""
    pending = step.state.points_pending_lots
    count = 0
    # Soonest first: only the front can be due, and most messages find nothing there.
    while count < len(pending) and pending[count].confirm_at <= cutoff:
        count += 1
    if not count:
        return step
    due = pending[:count]
    step = step.update(
        points_pending_lots=pending[count:],
        points_pending=step.state.points_pending - sum(entry.amount for entry in due),
    )
    for entry in due:
        event = ctx.caused_by(
            Cause(type="points.confirm", id=derive_id(entry.lot_id, "confirm")), entry.confirm_at
        )
        step = insert_lot(
            step,
            PointsLot(
                lot_id=entry.lot_id,
                amount=entry.amount,
                original=entry.amount,
                earned_at=entry.confirm_at,
                expires_at=entry.expires_at,
                cause=entry.cause,
            ),
        )
        step = step.log(
            event,
            "points_confirmed",
            delta=entry.amount,
            customer_note=f"Order {entry.order_id}: {entry.amount} points can be spent now",
            order_id=entry.order_id,
            lot_id=entry.lot_id,
            expires_at=entry.expires_at.isoformat() if entry.expires_at else None,
            balance_after=step.state.points_balance,
        )
    return step


def take_order_points(step: Step, amount: int, lot_id: str | None) -> tuple[Step, int, int]:
    """Take back an order's points: its pending ones first, then the balance (own lot first).

    Returns the step, the points taken from pending and those taken from the balance.
    """
    from_pending = 0
    if lot_id is not None and amount > 0:
        pending = step.state.points_pending_lots
        index = next((n for n, p in enumerate(pending) if p.lot_id == lot_id), None)
        if index is not None:
            entry = pending[index]
            from_pending = min(amount, entry.amount)
            left = entry.amount - from_pending
            kept = (entry.model_copy(update={"amount": left}),) if left else ()
            step = step.update(
                points_pending_lots=(*pending[:index], *kept, *pending[index + 1 :]),
                points_pending=step.state.points_pending - from_pending,
            )
    step, from_balance = take_points(step, amount - from_pending, first_lot=lot_id)
    return step, from_pending, from_balance


def confirm(step: Step, message: ConfirmPoints, ctx: Context) -> Step:
    """Scheduled confirmation: pending points due by ``due_at`` become spendable."""
    return confirm_due(step, ctx, min(message.data.due_at, ctx.at))
