"""Seeded mixed load for the fault-tolerance tests (its expected outcome: pipeline_oracle).

The four input topics are consumed independently, so the worker may apply one customer's
messages from two topics in either order. The load is built so that this cannot change the
outcome: every customer gets a profile whose messages, apart from its ``customer.upserted``
messages (on ``loyalty.customers``), all travel on ONE other input topic, in order. The first
upsert creates the customer; a message that overtakes it is parked and applied in arrival order,
which for one topic is publish order. A later upsert only renames the customer, which commutes
with everything else. A test replays other interleavings to check that claim.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from cli.bench_load import coffee_order
from models.program import Program
from models.state import CustomerState
from tests.integration.pipeline_oracle import Envelope, Load, Oracle, Published
from topics import names

PROFILES = ("orders", "adjustments", "tiers", "lifecycle")
PROFILE_WEIGHTS = (4, 3, 2, 1)


class _Customer:
    """Builds one customer's messages, asking the oracle for its current state as it goes."""

    def __init__(
        self, oracle: Oracle, rng: random.Random, customer_id: str, start: datetime
    ) -> None:
        self.oracle = oracle
        self.rng = rng
        self.customer_id = customer_id
        self.at = start
        self.count = 0
        self.messages: list[Published] = []

    def send(self, topic: str, kind: str, data: dict[str, Any], **extra: Any) -> Envelope:
        self.count += 1
        self.at += timedelta(minutes=self.rng.randint(1, 30))
        envelope: Envelope = {
            "id": f"{self.customer_id}:{self.count}:{kind}",
            "type": kind,
            "customer_id": self.customer_id,
            "occurred_at": self.at.isoformat(),
            "data": data,
            **extra,
        }
        self.resend(topic, envelope)
        return envelope

    def resend(self, topic: str, envelope: Envelope) -> None:
        self.messages.append(Published(topic, envelope))
        self.oracle.apply(envelope)

    @property
    def state(self) -> CustomerState:
        return self.oracle.state(self.customer_id)

    def signup(self) -> None:
        self.send(
            names.CUSTOMERS,
            "customer.upserted",
            {"email": f"{self.customer_id}@example.test", "first_name": "Load"},
            source="storefront",
        )


def _orders(c: _Customer, currency: str) -> None:
    paid: list[Envelope] = []
    for _ in range(c.rng.randint(6, 12)):
        roll = c.rng.random()
        if paid and roll < 0.12:
            order = c.rng.choice(paid)["data"]
            total = Decimal(order["total"])
            amount = (total * Decimal(c.rng.randint(10, 60)) / 100).quantize(Decimal("0.01"))
            c.send(
                names.ORDERS,
                "order.refunded",
                {
                    "order_id": order["order_id"],
                    "refund_id": f"{order['order_id']}-r{c.count}",
                    "amount": str(max(amount, Decimal("0.01"))),
                },
            )
        elif paid and roll < 0.18:
            c.send(
                names.ORDERS,
                "order.cancelled",
                {"order_id": c.rng.choice(paid)["data"]["order_id"]},
            )
        elif paid and roll < 0.22:
            c.resend(names.ORDERS, c.rng.choice(paid))  # the same message again
        elif paid and roll < 0.25:
            # The same order under a new message id: a duplicate by business key.
            c.send(names.ORDERS, "order.paid", dict(c.rng.choice(paid)["data"]))
        else:
            coffees = c.rng.randint(0, 4)
            beans = c.rng.randint(10, 250)
            data, _ = coffee_order(f"{c.customer_id}-o{c.count}", beans, coffees, currency)
            paid.append(c.send(names.ORDERS, "order.paid", data, source="storefront"))


def _adjustments(c: _Customer) -> None:
    for _ in range(c.rng.randint(5, 10)):
        roll = c.rng.random()
        issued = [g.grant_id for g in c.state.rewards if g.status in ("issued", "redeemed")]
        if roll < 0.35:
            delta = c.rng.choice([c.rng.randint(50, 900), -c.rng.randint(10, 400)])
            data: dict[str, Any] = {
                "delta": delta,
                "internal_note": "load",
                "customer_note": "Thanks",
            }
            if c.rng.random() < 0.3:
                data["expires_in_months"] = 12
            c.send(names.ADJUSTMENTS, "points.adjust", data, actor="load@example.test")
        elif roll < 0.6:
            delta = c.rng.choice([c.rng.randint(1, 10), -c.rng.randint(1, 3)])
            c.send(names.ADJUSTMENTS, "stamps.adjust", {"delta": delta}, actor="load@example.test")
        elif roll < 0.8:
            reward = c.rng.choice(["tote-bag", "voucher-20", "pastry"])
            c.send(names.ADJUSTMENTS, "reward.redeem", {"reward_id": reward})
        elif issued:
            c.send(names.ADJUSTMENTS, "reward.revoke", {"grant_id": c.rng.choice(issued)})
        else:
            c.send(names.ADJUSTMENTS, "points.adjust", {"delta": c.rng.randint(100, 700)})


def _tiers(c: _Customer, tier_names: list[str]) -> None:
    for _ in range(c.rng.randint(3, 7)):
        roll = c.rng.random()
        tier = c.rng.choice(tier_names)
        if roll < 0.4:
            data: dict[str, Any] = {"tier": tier, "notify": c.rng.random() < 0.5}
            c.send(names.TIER_COMMANDS, "tier.change", data, actor="load@example.test")
        elif roll < 0.7:
            data = {
                "action": "upgrade",
                "strategy": "specific",
                "tier": tier,
                "expiry": {"kind": "duration", "days": 90},
                "notify": True,
            }
            c.send(names.TIER_COMMANDS, "tier.manage", data, actor="load@example.test")
        else:
            action = c.rng.choice(["downgrade", "renew"])
            data = {"action": action, "strategy": "rules", "notify": False}
            c.send(names.TIER_COMMANDS, "tier.manage", data, actor="load@example.test")


def _lifecycle(c: _Customer) -> None:
    c.send(
        names.CUSTOMERS,
        "customer.upserted",
        {"email": f"{c.customer_id}@example.test", "first_name": "Load", "last_name": "Renamed"},
    )
    if c.rng.random() < 0.5:
        c.send(names.CUSTOMERS, "customer.removed", {"reason": "load test"})


def _rename(c: _Customer) -> Published:
    """A later upsert that only changes the last name (commutes with every other message)."""
    c.count += 1
    envelope: Envelope = {
        "id": f"{c.customer_id}:{c.count}:rename",
        "type": "customer.upserted",
        "customer_id": c.customer_id,
        "occurred_at": (c.at + timedelta(minutes=1)).isoformat(),
        "data": {
            "email": f"{c.customer_id}@example.test",
            "first_name": "Load",
            "last_name": "Later",
        },
    }
    return Published(names.CUSTOMERS, envelope)


def generate(
    program: Program, *, customers: int, seed: int, run_id: str, now: datetime | None = None
) -> Load:
    """Build a seeded stream over ``customers`` customers and compute its expected outcome."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    start = now - timedelta(days=3)
    oracle = Oracle(program, now)
    tier_names = [t.name for t in program.tiers]
    per_customer: list[list[Published]] = []
    ids: list[str] = []
    for number in range(customers):
        customer_id = f"load-{run_id}-{number:04d}"
        ids.append(customer_id)
        c = _Customer(oracle, rng, customer_id, start + timedelta(seconds=number))
        c.signup()
        profile = rng.choices(PROFILES, PROFILE_WEIGHTS)[0]
        if profile == "orders":
            _orders(c, program.currency)
        elif profile == "adjustments":
            _adjustments(c)
        elif profile == "tiers":
            _tiers(c, tier_names)
        else:
            _lifecycle(c)
        messages = c.messages
        if profile != "lifecycle" and rng.random() < 0.3:
            rename = _rename(c)
            oracle.apply(rename.envelope)
            messages = [*messages, rename]
        per_customer.append(messages)
    stream = _interleave(per_customer, rng)
    return Load(
        stream=stream,
        customers=ids,
        now=now,
        expected=dict(oracle.states),
        expected_outputs={topic: set(out) for topic, out in oracle.outputs.items()},
        notifications=dict(oracle.notifications),
    )


def _interleave(per_customer: list[list[Published]], rng: random.Random) -> list[Published]:
    """Merge the customers' sequences at random, keeping each topic's order per customer.

    About a fifth of the customers have their creating upsert moved later in the stream (it is
    on another topic than their other messages), so those messages reach the worker first and
    must be parked.
    """
    queues: list[list[Published]] = []
    for messages in per_customer:
        queue = list(messages)
        if len(queue) > 1 and queue[1].topic != names.CUSTOMERS and rng.random() < 0.2:
            signup = queue.pop(0)
            # Never behind the customer's next upsert: one topic keeps its order.
            later = next((i for i, m in enumerate(queue) if m.topic == names.CUSTOMERS), len(queue))
            queue.insert(rng.randint(1, min(4, later)), signup)
        queues.append(queue)
    stream: list[Published] = []
    live = [q for q in queues if q]
    while live:
        queue = rng.choice(live)
        stream.append(queue.pop(0))
        if not queue:
            live.remove(queue)
    return stream
