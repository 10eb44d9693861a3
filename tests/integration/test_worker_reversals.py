"""Through `loyalty worker`: a cancelled order takes back what it triggered; bad groups refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from settings import Settings
from tests.integration.worker_kit import WorkerUnderTest
from topics import names

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def message(kind: str, customer: str, data: dict[str, Any], id: str, days_ago: float) -> dict:
    when = (NOW - timedelta(days=days_ago)).isoformat()
    return {"id": id, "type": kind, "customer_id": customer, "occurred_at": when, "data": data}


@pytest.fixture(scope="module")
async def worker(
    stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WorkerUnderTest]:
    workdir: Path = tmp_path_factory.mktemp("worker-reversals")
    under_test = WorkerUnderTest(stack, uuid.uuid4().hex[:10], workdir)
    await under_test.start()
    yield under_test
    try:
        assert await under_test.stop() == 0, under_test.log()
        assert "Traceback" not in under_test.log(), under_test.log()
    finally:
        await under_test.close()


async def test_cancelling_the_order_that_reached_silver_takes_the_tier_and_reward_back(
    worker: WorkerUnderTest, unique: str
) -> None:
    cid = f"rv-{unique}"
    upsert = {"email": f"{cid}@example.com", "first_name": "Ana"}
    await worker.send(
        names.CUSTOMERS, message("customer.upserted", cid, upsert, f"up-{cid}", 3), cid
    )
    order = {"order_id": "S1", "total": "600.00", "currency": "EUR", "items": []}
    await worker.send(names.ORDERS, message("order.paid", cid, order, f"paid-{cid}", 2), cid)
    reached = await worker.wait_customer(cid, lambda c: c["tier"] == "Silver", "Silver reached")
    [welcome] = [r for r in reached["rewards"] if r["reward_id"] == "welcome-silver"]
    assert welcome["status"] == "issued"
    # The program holds a tier for a 12-month membership period: not one bought and returned.
    cancel = message("order.cancelled", cid, {"order_id": "S1"}, f"cancel-{cid}", 1)
    await worker.send(names.ORDERS, cancel, cid)
    view = await worker.wait_customer(cid, lambda c: c["tier"] == "Bronze", "Silver taken back")
    statuses = {r["grant_id"]: r["status"] for r in view["rewards"]}
    assert statuses[welcome["grant_id"]] == "revoked"
    assert view["points_balance"] == 0
    [revoked] = [a for a in view["activity"] if a["kind"] == "reward_revoked"]
    assert revoked["cause"]["id"] == f"cancel-{cid}"

    def ours(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [m for m in found if m["type"] == "reward.revoked" and m["customer_id"] == cid]

    [published] = ours(await worker.wait_outputs(names.REWARDS, lambda f: bool(ours(f)), "out"))
    assert published["data"]["grant_id"] == welcome["grant_id"]


async def test_a_command_for_an_undeclared_group_is_dead_lettered(
    worker: WorkerUnderTest, unique: str
) -> None:
    key = f"group:nosuch-{unique}"
    data = {
        "action": "upgrade",
        "strategy": "specific",
        "tier": "Gold",
        "group_id": f"nosuch-{unique}",
    }
    offset = await worker.send(
        names.TIER_COMMANDS, message("tier.manage", key, data, f"grp-{unique}", 0.01), key
    )

    def ours(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [d for d in found if d["key"] == key]

    [letter] = ours(await worker.wait_outputs(names.DEAD_LETTER, lambda f: bool(ours(f)), "dead"))
    assert (letter["error_code"], letter["offset"]) == ("unknown_group", offset)
    assert "staff" in letter["error_message"]  # the groups the program declares
