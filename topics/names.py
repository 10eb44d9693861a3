"""Topic names of the public contract (shared/CONTRACT.md) and their partition rules."""

from __future__ import annotations

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
