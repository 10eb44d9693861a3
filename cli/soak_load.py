"""The mixed load of ``loyalty bench soak``: an endless, seeded stream of shop messages.

A fixed number of customers is active at a time. Each signs up, becomes eligible a few seconds
later (so its first messages rarely overtake its ``customer.upserted``, which travels on another
topic), buys a planned number of orders (beans, often with coffees that fill stamp cards) and
meanwhile gets refunds, points and stamps adjustments and the odd redemption; after its last
order it retires and a new customer signs up in its place. The orders add up to enough points
that most customers cross Silver and many Gold, so tier changes, coupons and emails flow at a
steady share of the load for as long as it runs.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from cli.bench_load import coffee_order
from topics import names

Envelope = dict[str, Any]

READY_SECONDS = 3.0
"""How long after its sign-up a customer starts receiving other messages."""


@dataclass
class _Customer:
    customer_id: str
    orders_left: int
    count: int = 0
    paid: list[tuple[str, Decimal]] = field(default_factory=list)
    """Orders paid so far: (order id, amount not refunded yet)."""


@dataclass
class MixedLoad:
    """Yields (contract topic, envelope) pairs; ``now`` is seconds since the load started."""

    run: str
    currency: str
    active: int = 500
    seed: int = 13
    rng: random.Random = field(init=False)
    customers: list[_Customer] = field(default_factory=list)
    waiting: deque[tuple[float, _Customer]] = field(default_factory=deque)
    signed_up: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 - reproducible load, not a secret

    def next(self, now: float, at: datetime) -> tuple[str, Envelope]:
        """The next message, occurring at ``at``."""
        while self.waiting and self.waiting[0][0] <= now:
            self.customers.append(self.waiting.popleft()[1])
        if not self.customers or len(self.customers) + len(self.waiting) < self.active:
            return self._signup(now, at)
        customer = self.customers[self.rng.randrange(len(self.customers))]
        roll = self.rng.random()
        if roll < 0.08 and customer.paid:
            return self._refund(customer, at)
        if roll < 0.18:
            return self._points(customer, at)
        if roll < 0.24:
            return self._stamps(customer, at)
        if roll < 0.27:
            return self._redeem(customer, at)
        return self._order(customer, at)

    def _envelope(
        self, customer: _Customer, kind: str, at: datetime, data: dict[str, Any], **extra: Any
    ) -> Envelope:
        customer.count += 1
        return {
            "id": f"{customer.customer_id}:{customer.count}:{kind}",
            "type": kind,
            "customer_id": customer.customer_id,
            "occurred_at": at.isoformat(),
            "data": data,
            **extra,
        }

    def _signup(self, now: float, at: datetime) -> tuple[str, Envelope]:
        self.signed_up += 1
        customer = _Customer(f"s{self.run}-{self.signed_up:07d}", self.rng.randint(6, 16))
        self.waiting.append((now + READY_SECONDS, customer))
        data = {
            "email": f"{customer.customer_id}@soak.example",
            "first_name": "Soak",
            "last_name": f"Customer {self.signed_up}",
        }
        envelope = self._envelope(customer, "customer.upserted", at, data, source="storefront")
        return names.CUSTOMERS, envelope

    def _order(self, customer: _Customer, at: datetime) -> tuple[str, Envelope]:
        coffees = self.rng.randint(0, 4)
        beans = self.rng.randint(15, 260)
        order_id = f"{customer.customer_id}-o{customer.count + 1}"
        data, total = coffee_order(order_id, beans, coffees, self.currency)
        envelope = self._envelope(customer, "order.paid", at, data, source="storefront")
        customer.paid.append((order_id, total))
        customer.orders_left -= 1
        if customer.orders_left <= 0:
            self.customers.remove(customer)  # retires; a new customer signs up in its place
        return names.ORDERS, envelope

    def _refund(self, customer: _Customer, at: datetime) -> tuple[str, Envelope]:
        index = self.rng.randrange(len(customer.paid))
        order_id, left = customer.paid[index]
        share = Decimal(self.rng.randint(10, 60)) / 100
        amount = max(Decimal("0.01"), (left * share).quantize(Decimal("0.01")))
        customer.paid[index] = (order_id, left - amount)
        data = {
            "order_id": order_id,
            "refund_id": f"{order_id}-r{customer.count + 1}",
            "amount": str(amount),
        }
        return names.ORDERS, self._envelope(customer, "order.refunded", at, data)

    def _points(self, customer: _Customer, at: datetime) -> tuple[str, Envelope]:
        delta = self.rng.choice([self.rng.randint(20, 400), -self.rng.randint(5, 60)])
        data = {"delta": delta, "internal_note": "soak", "customer_note": "Thanks for shopping"}
        envelope = self._envelope(customer, "points.adjust", at, data, actor="soak@example.test")
        return names.ADJUSTMENTS, envelope

    def _stamps(self, customer: _Customer, at: datetime) -> tuple[str, Envelope]:
        data = {"delta": self.rng.randint(1, 5)}
        envelope = self._envelope(customer, "stamps.adjust", at, data, actor="soak@example.test")
        return names.ADJUSTMENTS, envelope

    def _redeem(self, customer: _Customer, at: datetime) -> tuple[str, Envelope]:
        data = {"reward_id": self.rng.choice(["tote-bag", "pastry"])}
        return names.ADJUSTMENTS, self._envelope(customer, "reward.redeem", at, data)
