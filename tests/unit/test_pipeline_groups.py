"""The worker refuses a group command for a group the program does not declare."""

from __future__ import annotations

from tests.unit.factories import T0
from tests.unit.pipeline_kit import Kit
from topics import names


async def test_a_group_command_for_an_undeclared_group_is_dead_lettered_not_dropped() -> None:
    kit = Kit()
    command = {
        "id": "g-typo",
        "type": "tier.manage",
        "customer_id": "group:stafff",
        "occurred_at": T0.isoformat(),
        "data": {"action": "upgrade", "strategy": "specific", "tier": "Gold", "group_id": "stafff"},
    }
    await kit.handle(kit.record(names.TIER_COMMANDS, command, key="group:stafff"))
    assert kit.publisher.on(names.TIER_COMMANDS) == []
    [letter] = kit.publisher.on(names.DEAD_LETTER)
    assert letter["error_code"] == "unknown_group"
    assert "'stafff'" in letter["error_message"]
    assert kit.count("tier.manage", "dead_letter") == 1
