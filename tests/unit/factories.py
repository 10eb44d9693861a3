"""Builders for unit tests of the rules: a small program, messages with defaults, a runner."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from models.decide import Decision, decide
from models.messages import InputMessage
from models.program import Program, parse_program
from models.state import CustomerState
from topics.codec import parse_message

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2030, 1, 1, tzinfo=UTC)  # processing time: only stamps output envelopes
CUSTOMER = "c-1"
CODE_KEY = "unit-test-reward-code-key"  # the secret reward codes are derived from

BASE_PROGRAM: dict[str, Any] = {
    "currency": "EUR",
    "earn": {"points_per_currency_unit": 1, "rounding": "floor"},
    "stamps": {
        "mode": "per_qualifying_item",
        "stamps_per_item": 1,
        "qualifying_categories": ["coffee"],
        "min_order_value": "5.00",
        "card_size": 5,
        "card_reward": "free-coffee",
    },
    "tiers": [
        {"name": "Bronze", "rank": 0, "threshold": 0},
        {
            "name": "Silver",
            "rank": 1,
            "threshold": 500,
            "entry_rewards": ["welcome-silver"],
            "points_multiplier": "1.5",
        },
        {"name": "Gold", "rank": 2, "threshold": 1500, "entry_rewards": ["welcome-gold"]},
    ],
    "qualification_period": "lifetime",
    "emails": {"tier_upgraded": True, "tier_downgraded": True, "reward_redeemed": True},
    "rewards": [
        {"reward_id": "welcome-silver", "name": "5 EUR off"},
        {"reward_id": "welcome-gold", "name": "10 EUR off"},
        {"reward_id": "free-coffee", "name": "Free coffee"},
        {"reward_id": "tote-bag", "name": "Tote bag", "cost_points": 300},
        {"reward_id": "cookie", "name": "Cookie", "cost_stamps": 3},
    ],
    "groups": {"staff": "Employees"},
}


def make_program(**overrides: Any) -> Program:
    """The base test program with top-level keys replaced."""
    return parse_program({**BASE_PROGRAM, **overrides})


PROGRAM = make_program()
_ids = itertools.count(1)


def msg(
    kind: str,
    data: dict[str, Any] | None = None,
    *,
    at: datetime = T0,
    customer_id: str = CUSTOMER,
    id: str | None = None,
    **envelope: Any,
) -> InputMessage:
    """A validated message of ``kind`` (the parser checks it like the worker would)."""
    return parse_message(
        {
            "id": id or f"m-{next(_ids)}",
            "type": kind,
            "customer_id": customer_id,
            "occurred_at": at.isoformat(),
            "data": data or {},
            **envelope,
        }
    )


def upsert(email: str = "Ana@Example.com", **data: Any) -> InputMessage:
    at = data.pop("at", T0)
    return msg("customer.upserted", {"email": email, "first_name": "Ana", **data}, at=at)


def order(
    order_id: str,
    total: str,
    items: list[dict[str, Any]] | None = None,
    at: datetime = T0,
    **data: Any,
) -> InputMessage:
    return msg(
        "order.paid",
        {"order_id": order_id, "total": total, "currency": "EUR", "items": items or [], **data},
        at=at,
    )


def coffee(quantity: int = 1, price: str = "4.00", sku: str = "latte") -> dict[str, Any]:
    return {"sku": sku, "quantity": quantity, "unit_price": price, "categories": ["coffee"]}


def later(days: int = 0, **kwargs: float) -> datetime:
    return T0 + timedelta(days=days, **kwargs)


def run(
    *messages: InputMessage, program: Program = PROGRAM, state: CustomerState | None = None
) -> tuple[CustomerState | None, list[Decision]]:
    """Apply messages in order; return the final state and every decision."""
    decisions = []
    for message in messages:
        decision = decide(state, message, program, NOW, code_key=CODE_KEY)
        decisions.append(decision)
        state = decision.state
    return state, decisions


def joined(*messages: InputMessage, program: Program = PROGRAM) -> CustomerState:
    """State of a customer who joined and then received ``messages``."""
    state, _ = run(upsert(), *messages, program=program)
    assert state is not None
    return state


def apply(
    state: CustomerState | None, message: InputMessage, program: Program = PROGRAM
) -> Decision:
    return decide(state, message, program, NOW, code_key=CODE_KEY)


def kinds(decision: Decision) -> list[str]:
    """Types of the outputs of a decision, in order."""
    return [output.type for output in decision.outputs]
