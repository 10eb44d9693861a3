"""A deliberately simple second implementation of part of the rules, for tests only.

It knows one fixed program (the test program of ``factories``, without membership period) and
only these messages: join, order paid, refund by amount or in full, cancellation, points and
stamps adjustments, and redeeming the 300-point tote bag or the 3-stamp cookie. It tracks plain
numbers: points balance, points earned, stamps balance, stamp cards completed (a full card of 5
spends its stamps), spend and the tier. It does not import the rules; if
both implementations agree over random histories, a bug would have to be made twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

TIERS = [("Bronze", 0, Decimal(1)), ("Silver", 500, Decimal("1.5")), ("Gold", 1500, Decimal(1))]
TOTE_BAG_COST = 300
COOKIE_COST = 3
CARD_SIZE = 5
STAMP_MIN_ORDER = Decimal(5)


@dataclass
class RefOrder:
    total: Decimal
    points: int
    stamps: int
    refunded: Decimal = Decimal(0)
    points_back: int = 0
    stamps_back: int = 0
    cancelled: bool = False


@dataclass
class RefCustomer:
    points: int = 0
    earned: int = 0
    stamps: int = 0
    cards: int = 0
    spend: Decimal = Decimal(0)
    tier: str | None = "Bronze"
    orders: dict[str, RefOrder] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)

    def _retier(self) -> None:
        # Reversing points already spent can take points earned below zero: below every tier.
        reached = [name for name, threshold, _ in TIERS if self.earned >= threshold]
        self.tier = reached[-1] if reached else None

    def _collect(self, stamps: int) -> None:
        self.stamps += stamps
        self.cards += self.stamps // CARD_SIZE
        self.stamps %= CARD_SIZE

    def _multiplier(self) -> Decimal:
        return next((m for name, _, m in TIERS if name == self.tier), Decimal(1))

    def order_paid(self, msg_id: str, order_id: str, total: Decimal, coffees: int) -> None:
        if msg_id in self.seen or order_id in self.orders:
            return
        self.seen.add(msg_id)
        points = math.floor(total * self._multiplier())
        stamps = coffees if total >= STAMP_MIN_ORDER else 0
        self.orders[order_id] = RefOrder(total, points, stamps)
        self.points += points
        self.earned += points
        self._collect(stamps)
        self.spend += total
        self._retier()

    def refund(self, msg_id: str, order_id: str, amount: Decimal | None, cancel: bool) -> None:
        if msg_id in self.seen:
            return
        self.seen.add(msg_id)
        order = self.orders.get(order_id)
        if order is None or order.cancelled or (order.refunded >= order.total and not cancel):
            return
        left = order.total - order.refunded
        now = left if amount is None or cancel else min(amount, left)
        order.refunded += now
        order.cancelled = order.cancelled or cancel
        self.spend -= now
        whole = order.cancelled or order.refunded >= order.total
        points_due = (
            order.points if whole else math.floor(order.points * order.refunded / order.total)
        )
        stamps_due = (
            order.stamps if whole else math.floor(order.stamps * order.refunded / order.total)
        )
        points, stamps = points_due - order.points_back, stamps_due - order.stamps_back
        order.points_back, order.stamps_back = points_due, stamps_due
        self.points -= min(points, self.points)
        self.stamps -= min(stamps, self.stamps)
        self.earned -= points
        self._retier()

    def adjust_points(self, msg_id: str, delta: int) -> None:
        if msg_id in self.seen:
            return
        self.seen.add(msg_id)
        if delta < 0 and -delta > self.points:
            return
        self.points += delta
        self.earned += delta
        self._retier()

    def adjust_stamps(self, msg_id: str, delta: int) -> None:
        if msg_id in self.seen:
            return
        self.seen.add(msg_id)
        if delta < 0 and -delta > self.stamps:
            return
        self._collect(delta)

    def redeem(self, msg_id: str, reward_id: str) -> None:
        if msg_id in self.seen:
            return
        self.seen.add(msg_id)
        if reward_id == "tote-bag" and self.points >= TOTE_BAG_COST:
            self.points -= TOTE_BAG_COST
        elif reward_id == "cookie" and self.stamps >= COOKIE_COST:
            self.stamps -= COOKIE_COST
