"""customer.forget through a real worker and MongoDB, published by `loyalty customer forget`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bootstrap import mongo_client
from settings import Settings
from tests.integration.admin_helpers import running_worker
from tests.integration.worker_kit import WorkerUnderTest
from topics import names

pytestmark = pytest.mark.integration


def message(kind: str, cid: str, data: dict[str, Any], id: str) -> dict[str, Any]:
    when = datetime.now(UTC).isoformat()
    return {"id": id, "type": kind, "customer_id": cid, "occurred_at": when, "data": data}


@pytest.fixture(scope="module")
async def worker(
    stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WorkerUnderTest]:
    workdir: Path = tmp_path_factory.mktemp("forget")
    async with running_worker(stack, workdir) as under_test:
        yield under_test


async def test_forget_erases_everywhere_and_refuses_what_follows(
    worker: WorkerUnderTest, stack: Settings, unique: str
) -> None:
    cid = f"fg-{unique}"
    address = f"{cid}@example.com"
    upsert = {"email": address, "first_name": "Ana", "last_name": "Lima"}
    await worker.send(names.CUSTOMERS, message("customer.upserted", cid, upsert, f"u-{cid}"), cid)
    note = {"delta": 40, "internal_note": "Ana Lima phoned", "customer_note": "Thanks Ana"}
    await worker.send(names.ADJUSTMENTS, message("points.adjust", cid, note, f"a-{cid}"), cid)
    await worker.wait_customer(cid, lambda c: c["points_balance"] == 40, "points adjusted")

    out = await worker.cli("customer", "forget", cid, "--reason", "Ana Lima asked", "--wait")
    assert "forgotten" in out

    view = await worker.wait_customer(cid, lambda c: c["status"] == "forgotten", "forgotten")
    assert (view["email"], view["first_name"], view["last_name"]) == ("", None, None)
    assert view["points_balance"] == 40  # the balance stays
    assert "Ana" not in str(view["activity"])
    assert "points_adjusted" in {e["kind"] for e in view["activity"]}

    client = mongo_client(stack)
    try:
        database = client[worker.database]
        stored = await database["customers"].find_one({"_id": cid})
        assert stored is not None
        assert "email_key" not in stored
        raw = [doc async for doc in database["activity"].find({"customer_id": cid})]
        assert raw
        assert "Ana" not in str(raw)
        assert address not in str(raw)
    finally:
        await client.close()

    order = {"order_id": f"o-{cid}", "total": "10.00", "currency": "EUR", "items": []}
    await worker.send(names.ORDERS, message("order.paid", cid, order, f"e-{cid}"), cid)
    back = message("customer.upserted", cid, upsert, f"u2-{cid}")
    await worker.send(names.CUSTOMERS, back, cid)

    def refused_twice(c: dict[str, Any]) -> bool:
        codes = [e.get("details", {}).get("code") for e in c["activity"]]
        return codes.count("customer_forgotten") == 2

    view = await worker.wait_customer(cid, refused_twice, "order and upsert refused")
    assert (view["email"], view["points_balance"]) == ("", 40)
