"""The oracle of the fault-tolerance tests: ``models.decide`` per customer, in order.

It applies the rules to each customer's messages in publish order (the creating upsert first),
exactly as a single in-memory worker would, and collects every output id by topic. ``replay``
and ``worker_orders`` re-apply a stream in another order a correct worker may see, to check
that a load's outcome does not depend on the order between topics.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from models.decide import decide
from models.outputs import OutputMessage
from models.program import Program
from models.state import CustomerState
from topics import names
from topics.codec import parse_message

Envelope = dict[str, Any]

CODE_KEY = "fault-tolerance-tests-reward-code-key-0123456789"
"""The reward code key the oracle and the workers under test share (codes must match)."""


@dataclass(frozen=True)
class Published:
    """One message of the load: its contract topic (not namespaced) and its JSON envelope."""

    topic: str
    envelope: Envelope

    @property
    def key(self) -> bytes:
        """The Kafka key: the customer id."""
        return str(self.envelope["customer_id"]).encode()

    @property
    def value(self) -> bytes:
        """The Kafka value: the envelope as UTF-8 JSON."""
        return json.dumps(self.envelope).encode()


@dataclass
class Load:
    """A stream to publish, in order, and what a correct worker makes of it."""

    stream: list[Published]
    customers: list[str]
    now: datetime
    expected: dict[str, CustomerState]
    expected_outputs: dict[str, set[str]] = field(default_factory=dict)
    notifications: dict[str, str] = field(default_factory=dict)
    """Every expected ``notification.requested`` id and the customer it is for."""

    @property
    def output_count(self) -> int:
        """How many distinct output ids the stream must produce."""
        return sum(len(ids) for ids in self.expected_outputs.values())


def output_topic(output: OutputMessage) -> str:
    """Return the contract topic an output message is published on (by its type's family)."""
    family = output.type.split(".", 1)[0]
    return {
        "tier": names.TIER_CHANGES,
        "reward": names.REWARDS,
        "notification": names.NOTIFICATIONS,
    }[family]


def comparable(state: CustomerState) -> dict[str, Any]:
    """Return the parts of a state that must be equal after any correct run."""
    # ``version`` counts applied (non-duplicate) messages, so a message applied twice or
    # dropped shows there even when the balances happen to agree.
    rewards = sorted(
        (g.grant_id, g.reward_id, g.status, g.origin, getattr(g, "code", None))
        for g in state.rewards
    )
    return {
        "status": state.status,
        "email": state.email,
        "first_name": state.first_name,
        "last_name": state.last_name,
        "points_balance": state.points_balance,
        "points_earned": state.points_earned,
        "stamps_balance": state.stamps_balance,
        "stamp_cards_completed": state.stamp_cards_completed,
        "lifetime_spend": Decimal(state.lifetime_spend),
        "order_count": state.order_count,
        "tier": state.tier,
        "tier_source": state.tier_source,
        "tier_expires_at": state.tier_expires_at,
        "rewards": rewards,
        "version": state.version,
    }


class Oracle:
    """Applies the rules per customer, in order, and collects every output id by topic."""

    def __init__(self, program: Program, now: datetime, code_key: str = CODE_KEY) -> None:
        self.program = program
        self.now = now
        self.code_key = code_key
        self.states: dict[str, CustomerState] = {}
        self.outputs: dict[str, set[str]] = {}
        self.notifications: dict[str, str] = {}

    def apply(self, envelope: Envelope) -> None:
        message = parse_message(envelope)
        decision = decide(
            self.states.get(message.customer_id),
            message,
            self.program,
            self.now,
            code_key=self.code_key,
        )
        if decision.state is not None:
            self.states[message.customer_id] = decision.state
        for output in decision.outputs:
            self.outputs.setdefault(output_topic(output), set()).add(output.id)
            if output.type == "notification.requested":
                self.notifications[output.id] = output.customer_id

    def state(self, customer_id: str) -> CustomerState:
        return self.states[customer_id]


def replay(
    program: Program,
    stream: Iterable[Published],
    now: datetime,
    order: Callable[[list[Published]], list[Published]],
) -> Oracle:
    """Apply a stream per customer in the order ``order`` gives each customer's messages."""
    by_customer: dict[str, list[Published]] = {}
    for item in stream:
        by_customer.setdefault(str(item.envelope["customer_id"]), []).append(item)
    oracle = Oracle(program, now)
    for messages in by_customer.values():
        for item in order(messages):
            oracle.apply(item.envelope)
    return oracle


def worker_orders(messages: list[Published], rng: random.Random) -> list[Published]:
    """Return one order a correct worker may apply a customer's messages in.

    The creating upsert first (anything before it is parked, then applied in arrival order);
    each topic's messages in their own order; the topics merged at random.
    """
    by_topic: dict[str, list[Published]] = {}
    for item in messages:
        by_topic.setdefault(item.topic, []).append(item)
    created = by_topic[names.CUSTOMERS].pop(0)
    result = [created]
    live = [q for q in by_topic.values() if q]
    while live:
        queue = rng.choice(live)
        result.append(queue.pop(0))
        if not queue:
            live.remove(queue)
    return result
