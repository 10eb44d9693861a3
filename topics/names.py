"""Topic names of the public contract (shared/CONTRACT.md), their namespace and partition rules.

``LOYALTY_TOPIC_NAMESPACE`` prefixes every name (``<ns>loyalty.orders``), so several programs
(or tests) share one cluster without seeing each other's messages; empty by default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

CUSTOMERS: Final = "loyalty.customers"
ORDERS: Final = "loyalty.orders"
ADJUSTMENTS: Final = "loyalty.adjustments"
TIER_COMMANDS: Final = "loyalty.tier-commands"

TIER_CHANGES: Final = "loyalty.tier-changes"
REWARDS: Final = "loyalty.rewards"
NOTIFICATIONS: Final = "loyalty.notifications"
DEAD_LETTER: Final = "loyalty.dead-letter"

# Input topics share one partition count so that one worker owns a customer on all of them.
INPUT_TOPICS: Final = (CUSTOMERS, ORDERS, ADJUSTMENTS, TIER_COMMANDS)
OUTPUT_TOPICS: Final = (TIER_CHANGES, REWARDS, NOTIFICATIONS, DEAD_LETTER)
ALL_TOPICS: Final = INPUT_TOPICS + OUTPUT_TOPICS

# Kafka allows ASCII letters, digits, '.', '_' and '-' in topic names, up to 249 characters.
_NAMESPACE = re.compile(r"[A-Za-z0-9._-]{0,100}")


def check_namespace(namespace: str) -> str:
    """Return the namespace, or raise ValueError saying which characters a topic name allows."""
    if not _NAMESPACE.fullmatch(namespace):
        raise ValueError(
            f"topic namespace {namespace!r} may hold only ASCII letters, digits, '.', '_' and '-'"
            " (at most 100), since it becomes part of every topic name"
        )
    return namespace


@dataclass(frozen=True)
class Topics:
    """The contract's topic names under one namespace (``Topics("t1-").orders``)."""

    namespace: str = ""

    def __post_init__(self) -> None:
        check_namespace(self.namespace)

    def name(self, contract_name: str) -> str:
        """Return the namespaced name of one of the contract's topics."""
        return self.namespace + contract_name

    def contract_name(self, topic: str) -> str:
        """Return the contract's name of a namespaced topic (the inverse of ``name``)."""
        return topic.removeprefix(self.namespace)

    @property
    def customers(self) -> str:
        """loyalty.customers under the namespace."""
        return self.name(CUSTOMERS)

    @property
    def orders(self) -> str:
        """loyalty.orders under the namespace."""
        return self.name(ORDERS)

    @property
    def adjustments(self) -> str:
        """loyalty.adjustments under the namespace."""
        return self.name(ADJUSTMENTS)

    @property
    def tier_commands(self) -> str:
        """loyalty.tier-commands under the namespace."""
        return self.name(TIER_COMMANDS)

    @property
    def tier_changes(self) -> str:
        """loyalty.tier-changes under the namespace."""
        return self.name(TIER_CHANGES)

    @property
    def rewards(self) -> str:
        """loyalty.rewards under the namespace."""
        return self.name(REWARDS)

    @property
    def notifications(self) -> str:
        """loyalty.notifications under the namespace."""
        return self.name(NOTIFICATIONS)

    @property
    def dead_letter(self) -> str:
        """loyalty.dead-letter under the namespace."""
        return self.name(DEAD_LETTER)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The four input topics, which must share one partition count."""
        return tuple(self.name(t) for t in INPUT_TOPICS)

    @property
    def outputs(self) -> tuple[str, ...]:
        """The output topics, dead letters included."""
        return tuple(self.name(t) for t in OUTPUT_TOPICS)

    @property
    def all(self) -> tuple[str, ...]:
        """Every topic of the contract under the namespace."""
        return self.inputs + self.outputs
