"""The analytics example appends each tier change once and summarises the file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from consumers.analytics import read_lines, summarize
from consumers.app import serving
from settings import Settings
from tests.integration.consumers_support import finished, isolated, publish
from tests.integration.waiting import eventually
from topics import names


def _change(n: int, customer: str, to: str, direction: str) -> dict:
    return {
        "id": f"tc-{n}-{customer}",
        "type": "tier.changed",
        "customer_id": customer,
        "occurred_at": datetime.now(UTC).isoformat(),
        "data": {
            "from_tier": None,
            "to_tier": to,
            "direction": direction,
            "cause": {"type": "order.paid", "id": f"o-{n}"},
            "program_version": "v1",
            "notified": True,
        },
    }


async def test_tier_changes_are_appended_once_and_summarised(
    stack: Settings, unique: str, tmp_path: Path
) -> None:
    settings = isolated(stack, unique, tmp_path)
    changes = [
        _change(1, f"a-{unique}", "Silver", "up"),
        _change(2, f"b-{unique}", "Gold", "up"),
        _change(3, f"a-{unique}", "Gold", "up"),
    ]
    async with serving(settings, ["analytics"], web=False) as running:
        await publish(settings, names.TIER_CHANGES, [*changes, changes[0]])

        async def all_handled() -> bool:
            return finished(running.metrics, "analytics") >= 4

        await eventually(all_handled, within=60, what="four tier changes handled")
    # A second run of the same group after a "crash" before commit would see them again: the
    # file's ids keep it from appending twice.
    async with serving(settings, ["analytics"], web=False) as running:
        await publish(settings, names.TIER_CHANGES, [changes[1]])

        async def repeat_handled() -> bool:
            return finished(running.metrics, "analytics") >= 1

        await eventually(repeat_handled, within=60, what="the repeat handled")
    rows = list(read_lines(settings.tier_changes_file))
    # Partitions interleave customers; each change is in the file exactly once.
    assert sorted(row["id"] for row in rows) == sorted(c["id"] for c in changes)
    summary = summarize(iter(rows)).as_json()
    assert summary["changes"] == 3
    assert summary["per_direction"] == {"up": 3}
    assert summary["members_per_tier"] == {"Gold": 2}
    assert json.loads(settings.tier_changes_file.read_text().splitlines()[0])["cause_type"] == (
        "order.paid"
    )
