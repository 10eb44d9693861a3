"""The engine's own time events (source ``system``; not in the public contract).

Time as data (DESIGN.md invariant 7): the worker's scheduler sends one of these when a
customer's ``next_due_at`` passes, keyed by the customer, with an id derived from the customer
and the due time. ``decide`` settles everything due by the message's time before any rule, so
each of them is idempotent and any of them settles all that is due.
"""

from __future__ import annotations

from typing import Literal

from models.values import DomainModel, Envelope, EventTime, Name


class ExpireTierData(DomainModel):
    """Fires at ``due_at``; a no-op unless a tier ending or review is really due by then."""

    due_at: EventTime
    tier: Name | None = None


class ExpireTier(Envelope):
    """Internal: a tier or hold ends, or activity leaves the period (time as data, inv. 7)."""

    type: Literal["tier.expire"] = "tier.expire"
    data: ExpireTierData


class ExpirePointsData(DomainModel):
    """Fires at ``due_at``; expires every points lot whose expiry is at or before it."""

    due_at: EventTime


class ExpirePoints(Envelope):
    """Internal: earned or adjusted points reach their expiry (time as data, invariant 7)."""

    type: Literal["points.expire"] = "points.expire"
    data: ExpirePointsData


class ConfirmPointsData(DomainModel):
    """Fires at ``due_at``; confirms every pending points entry due by then."""

    due_at: EventTime


class ConfirmPoints(Envelope):
    """Internal: pending points of an order become spendable (time as data, invariant 7)."""

    type: Literal["points.confirm"] = "points.confirm"
    data: ConfirmPointsData


class SendRemindersData(DomainModel):
    """Fires at ``due_at``; requests every reminder due by then (points or tier expiring)."""

    due_at: EventTime


class SendReminders(Envelope):
    """Internal: a reminder falls due (``points_expiring``, ``tier_expiring``)."""

    type: Literal["reminder.due"] = "reminder.due"
    data: SendRemindersData
