"""The demo scenario as contract messages, step by step (pure: no I/O, time is a parameter)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

from models.program import Program
from topics import names


@dataclass(frozen=True)
class TierImport:
    """A tiers CSV the demo imports with ``loyalty import tiers`` (admin.imports)."""

    csv_text: str
    batch_id: str
    at: datetime


@dataclass(frozen=True)
class Step:
    """One scripted step: a title and the (topic, envelope) pairs it publishes.

    An import step carries the CSV instead; the runner imports it and records the commands the
    import published as the step's messages and the rows it refused as its notes.
    """

    title: str
    messages: tuple[tuple[str, dict[str, Any]], ...]
    notes: tuple[str, ...] = field(default=())
    tier_import: TierImport | None = None


@dataclass(frozen=True)
class Customer:
    """A demo customer."""

    key: str
    customer_id: str
    email: str
    first_name: str


def customers(run_id: str) -> list[Customer]:
    """Return the demo's customers, unique to this run so the demo can be played again."""
    return [
        Customer(key, f"demo-{run_id}-{key}", f"{key}.{run_id}@example.test", key.title())
        for key in ("alice", "bob", "carol")
    ]


def _envelope(
    message_id: str, kind: str, customer: Customer, at: datetime, data: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": kind,
        "customer_id": customer.customer_id,
        "occurred_at": at.isoformat(),
        "data": data,
        **extra,
    }


def _item(sku: str, quantity: int, price: str, *categories: str) -> dict[str, Any]:
    return {"sku": sku, "quantity": quantity, "unit_price": price, "categories": list(categories)}


def scenario(run_id: str, program: Program, now: datetime) -> list[Step]:
    """Return the steps: sign-ups, orders over a threshold, an adjustment, an import, a refund."""
    alice, bob, carol = customers(run_id)
    start = now - timedelta(days=30)
    signups = tuple(
        (
            names.CUSTOMERS,
            _envelope(
                f"{c.customer_id}:signup",
                "customer.upserted",
                c,
                start + timedelta(minutes=i),
                {"email": c.email, "first_name": c.first_name, "accepts_email": True},
                source="storefront",
            ),
        )
        for i, c in enumerate((alice, bob, carol))
    )
    order_1 = {
        "order_id": f"{run_id}-1001",
        "total": "320.00",
        "currency": program.currency,
        "items": [_item("beans-1kg", 2, "140.00", "beans"), _item("latte", 4, "10.00", "coffee")],
    }
    order_2 = {
        "order_id": f"{run_id}-1002",
        "total": "260.00",
        "currency": program.currency,
        "items": [
            _item("grinder", 1, "240.00", "equipment"),
            _item("espresso", 5, "4.00", "coffee"),
        ],
    }
    orders = tuple(
        (
            names.ORDERS,
            _envelope(
                f"{alice.customer_id}:paid:{i}",
                "order.paid",
                alice,
                start + timedelta(days=i),
                data,
                source="storefront",
            ),
        )
        for i, data in enumerate((order_1, order_2), start=1)
    )
    adjustment = (
        names.ADJUSTMENTS,
        _envelope(
            f"{bob.customer_id}:adjust:1",
            "points.adjust",
            bob,
            start + timedelta(days=5),
            {
                "delta": 600,
                "internal_note": "Late delivery, ticket 4711",
                "customer_note": "Sorry about the wait!",
                "expires_in_months": 12,
            },
            source="admin",
            actor="support@example.test",
        ),
    )
    csv_text = resources.files("demo").joinpath("tiers.csv").read_text()
    csv_text = csv_text.format(carol=carol.email, bob=bob.email)
    tiers = TierImport(csv_text, f"demo-{run_id}-tiers", start + timedelta(days=6))
    refund = (
        names.ORDERS,
        _envelope(
            f"{alice.customer_id}:refund:1",
            "order.refunded",
            alice,
            start + timedelta(days=7),
            {"order_id": order_2["order_id"], "refund_id": f"{run_id}-r1", "amount": "130.00"},
            source="storefront",
        ),
    )
    return [
        Step("three customers sign up", signups),
        Step("Alice pays two orders (580.00) and crosses the Silver threshold", orders),
        Step("support adds 600 points to Bob, with notes", (adjustment,)),
        Step("a CSV tier import (demo/tiers.csv, `loyalty import tiers`)", (), tier_import=tiers),
        Step("Alice gets half of her second order refunded", (refund,)),
    ]
