"""A deliberately simple second implementation of part of the rules, for tests only.

It knows one fixed program (the test program of ``factories``, without membership period) and
only these messages: join, order paid (lattes that earn stamps, mugs that do not), refund by
amount, by items or in full, cancellation, points and stamps adjustments, and redeeming the
300-point tote bag or the 3-stamp cookie. It tracks plain
numbers: points balance, points earned, stamps balance, stamp cards completed (a full card of 5
spends its stamps), spend and the tier. It does not import the rules; if
both implementations agree over random histories, a bug would have to be made twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

TIERS = [("Bronze", 0, Decimal(1)), ("Silver", 500, Decimal("1.5")), ("Gold", 1500, Decimal(1))]
TOTE_BAG_COST = 300
COOKIE_COST = 3
CARD_SIZE = 5
STAMP_MIN_ORDER = Decimal(5)
COFFEE_PRICE = Decimal("1.00")
MUG_PRICE = Decimal("5.00")


@dataclass
class RefOrder:
    total: Decimal
    points: int
    stamps: int
    lines: dict[str, tuple[int, Decimal, int]] = field(default_factory=dict)
    """sku -> (quantity, unit price, stamps per unit)"""
    refunded_units: dict[str, int] = field(default_factory=dict)
    by_amount: Decimal = Decimal(0)
    refunded: Decimal = Decimal(0)
    points_back: int = 0
    stamps_back: int = 0
    in_full: bool = False
    any_refund: bool = False
    cancelled: bool = False
    shipping: Decimal = Decimal(0)

    def share(self) -> Fraction:
        """How much of the order is refunded: amounts over the total, items over their base."""
        if self.cancelled or self.in_full:
            return Fraction(1)
        if not self.any_refund:
            return Fraction(0)
        if self.total == 0:
            done = all(
                self.refunded_units.get(sku, 0) >= q for sku, (q, _, _) in self.lines.items()
            )
            return Fraction(int(done))
        value = sum(q * price for q, price, _ in self.lines.values())
        back = sum(
            self.refunded_units.get(sku, 0) * price for sku, (_, price, _) in self.lines.items()
        )
        # The items were paid the total less shipping; a shortfall on their prices is a
        # discount spread over them by price.
        items_paid = Fraction(self.total - self.shipping)
        paid_back = Fraction(back) * min(Fraction(1), items_paid / Fraction(value)) if value else 0
        return min(Fraction(1), (Fraction(self.by_amount) + paid_back) / Fraction(self.total))

    def points_share(self) -> Fraction:
        """How much of the points is reversed: amounts over the total, items over the goods.

        The points were earned on the total less shipping (what the items were paid), so a
        refunded item takes back its paid share of that, and all items of an order without
        unassigned rest take back every point.
        """
        if self.cancelled or self.in_full:
            return Fraction(1)
        if not self.any_refund or self.total == 0:
            return self.share()
        goods = Fraction(self.total - self.shipping)
        share = Fraction(self.by_amount) / Fraction(self.total)
        value = sum(q * price for q, price, _ in self.lines.values())
        back = sum(
            self.refunded_units.get(sku, 0) * price for sku, (_, price, _) in self.lines.items()
        )
        if goods > 0 and value:
            share += Fraction(back) * min(Fraction(1), goods / Fraction(value)) / goods
        return min(Fraction(1), share)

    def money(self) -> Decimal:
        share = self.share()
        if share >= 1:
            return self.total
        return Decimal(math.floor(Fraction(self.total) * share * 10_000)) / 10_000

    def stamps_due(self) -> int:
        share = self.share()
        if share >= 1:
            return self.stamps
        per_item = sum(q * spu for q, _, spu in self.lines.values())
        named = sum(
            self.refunded_units.get(sku, 0) * spu for sku, (_, _, spu) in self.lines.items()
        )
        by_amount = Fraction(self.by_amount) / Fraction(self.total) if self.total else 0
        return min(self.stamps, per_item, named + math.floor(per_item * by_amount))


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

    def order_paid(
        self,
        msg_id: str,
        order_id: str,
        total: Decimal,
        coffees: int,
        mugs: int = 0,
        shipping: Decimal = Decimal(0),
    ) -> None:
        if msg_id in self.seen or order_id in self.orders:
            return
        self.seen.add(msg_id)
        # Shipping is part of the total but earns no points.
        points = math.floor((total - shipping) * self._multiplier())
        per_coffee = 1 if total >= STAMP_MIN_ORDER else 0
        lines = {}
        if coffees:
            lines["latte"] = (coffees, COFFEE_PRICE, per_coffee)
        if mugs:
            lines["mug"] = (mugs, MUG_PRICE, 0)
        stamps = coffees * per_coffee
        self.orders[order_id] = RefOrder(total, points, stamps, lines, shipping=shipping)
        self.points += points
        self.earned += points
        self._collect(stamps)
        self.spend += total
        self._retier()

    def refund(
        self,
        msg_id: str,
        order_id: str,
        amount: Decimal | None,
        cancel: bool,
        items: dict[str, int] | None = None,
    ) -> None:
        if msg_id in self.seen:
            return
        self.seen.add(msg_id)
        order = self.orders.get(order_id)
        if order is None or order.cancelled:
            return
        if not cancel and order.share() >= 1:
            return  # nothing left to refund
        if items is not None and any(sku not in order.lines for sku in items):
            return  # an item the order does not have: the refund is refused
        before = order.money()
        if cancel:
            order.cancelled = True
        elif items is not None:
            for sku, quantity in items.items():
                done = order.refunded_units.get(sku, 0)
                order.refunded_units[sku] = done + min(quantity, order.lines[sku][0] - done)
        elif amount is not None:
            order.by_amount += min(amount, order.total - before)
        else:
            order.in_full = True
        order.any_refund = True
        self.spend -= order.money() - before
        share = order.points_share()
        points_due = order.points if share >= 1 else math.floor(order.points * share)
        stamps_due = max(order.stamps_back, order.stamps_due())
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
