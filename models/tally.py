"""Counters of the activity that counts toward tiers, kept incrementally (frozen, pure data).

A tier decision must not read the customer's history: the store archives old orders and the
rules see only the order a message names (DESIGN.md invariant 7). So every order, refund and
points adjustment adds its signed effect to counters as it happens:

* ``Counts``: points earned, amount spent and orders that still count, side by side;
* ``Qualifying.total``: everything counted since ``since`` (the metric under a lifetime period);
* ``Qualifying.periods``: the same activity cut into coarse buckets (one per UTC day under a
  rolling period, one per calendar year under ``calendar_year``), oldest first, and
  ``Qualifying.window``, their sum. A bucket leaves the qualification period as a whole, at a
  moment the rules compute from its start (``rules/qualification.py``); then it is settled:
  subtracted from the window and dropped. So a metric costs O(1) and the state holds at most
  one bucket per day of the period, however long the history.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict


class Counts(BaseModel):
    """The three qualification metrics of some activity: points, spend, orders (signed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    points_earned: int = 0
    amount_spent: Decimal = Decimal(0)
    orders: int = 0

    def plus(self, other: Counts) -> Counts:
        """Return the sum of both."""
        return Counts.model_construct(
            points_earned=self.points_earned + other.points_earned,
            amount_spent=self.amount_spent + other.amount_spent,
            orders=self.orders + other.orders,
        )

    def minus(self, other: Counts) -> Counts:
        """Return this less ``other``."""
        return Counts.model_construct(
            points_earned=self.points_earned - other.points_earned,
            amount_spent=self.amount_spent - other.amount_spent,
            orders=self.orders - other.orders,
        )


class PeriodCounts(Counts):
    """Activity dated within one bucket of the qualification period, starting on ``start``."""

    start: date

    def plus(self, other: Counts) -> PeriodCounts:
        """Return this bucket with ``other`` added."""
        return PeriodCounts.model_construct(
            start=self.start,
            points_earned=self.points_earned + other.points_earned,
            amount_spent=self.amount_spent + other.amount_spent,
            orders=self.orders + other.orders,
        )


class Qualifying(BaseModel):
    """Activity that counts toward tiers: from ``since`` on (``None``: since joining)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    since: datetime | None = None
    total: Counts = Counts()
    window: Counts = Counts()
    """The sum of ``periods``: what counts under a calendar-year or rolling period."""
    periods: tuple[PeriodCounts, ...] = ()
