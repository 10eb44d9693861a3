"""Through a real worker: pending points confirmed and reminders sent by the scheduler's time
events, a variable redemption, and a reward given back when its order is cancelled."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from settings import Settings
from tests.integration.worker_kit import WorkerUnderTest
from topics import names

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def at(days_ago: float = 0) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat()


def message(kind: str, customer: str, data: dict[str, Any], id: str, when: str) -> dict[str, Any]:
    return {"id": id, "type": kind, "customer_id": customer, "occurred_at": when, "data": data}


def distinct(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Outputs by id: publishing is at least once, consumers deduplicate by id."""
    return list({m["id"]: m for m in found}.values())


def upsert(customer: str, u: str) -> dict[str, Any]:
    body = {"email": f"{customer}-{u}@example.com", "first_name": "Ana"}
    return message("customer.upserted", customer, body, f"up-{customer}-{u}", at(800))


def paid(customer: str, order_id: str, total: str, id: str, days_ago: float, **data: Any):
    body = {"order_id": order_id, "total": total, "currency": "EUR", "items": [], **data}
    return message("order.paid", customer, body, id, at(days_ago))


def _program_file(workdir: Path) -> Path:
    """The example program with a 14-day pending window and 30-day expiry reminders."""
    program = yaml.safe_load(Path("program.example.yaml").read_text(encoding="utf-8"))
    program["earn"]["points_pending_days"] = 14
    program["reminders"] = {"points_expiring_days": 30}
    path = workdir / "program.yaml"
    path.write_text(yaml.safe_dump(program), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
async def worker(
    stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WorkerUnderTest]:
    workdir: Path = tmp_path_factory.mktemp("earning")
    program_file = _program_file(workdir)
    under_test = WorkerUnderTest(
        stack,
        uuid.uuid4().hex[:10],
        workdir,
        scheduler_interval="1",
        program_file=str(program_file),
    )
    await under_test.start()
    yield under_test
    try:
        assert await under_test.stop() == 0, under_test.log()
        assert "Traceback" not in under_test.log(), under_test.log()
    finally:
        await under_test.close()


async def test_pending_points_are_confirmed_by_the_scheduler(
    worker: WorkerUnderTest, unique: str
) -> None:
    cid = f"p-{unique}"
    await worker.send(names.CUSTOMERS, upsert(cid, unique), cid)
    # paid 20 days ago: its 14-day window ended 6 days ago, so a confirmation is due now
    await worker.send(names.ORDERS, paid(cid, "P1", "80.00", f"p1-{unique}", 20), cid)
    # paid yesterday: still pending
    await worker.send(names.ORDERS, paid(cid, "P2", "30.00", f"p2-{unique}", 1), cid)

    def confirmed(c: dict[str, Any]) -> bool:
        return c["points_balance"] == 80 and c["points_pending"] == 30

    view = await worker.wait_customer(cid, confirmed, "P1 confirmed, P2 pending")
    causes = [a["cause"]["type"] for a in view["activity"] if a["kind"] == "points_confirmed"]
    assert causes == ["points.confirm"]


async def test_a_points_expiring_reminder_is_requested_once(
    worker: WorkerUnderTest, unique: str
) -> None:
    cid = f"r-{unique}"
    await worker.send(names.CUSTOMERS, upsert(cid, unique), cid)
    # 24-month expiry from the confirmation (14 days after payment): paid 24 months less a week
    # ago, the lot expires in about 3 weeks, inside the 30-day notice
    await worker.send(names.ORDERS, paid(cid, "R1", "50.00", f"r1-{unique}", 716), cid)

    def reminders(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            m
            for m in distinct(found)
            if m["customer_id"] == cid and m["data"]["kind"] == "points_expiring"
        ]

    mails = await worker.wait_outputs(names.NOTIFICATIONS, reminders, "points_expiring request")
    [mail] = reminders(mails)
    assert mail["data"]["template_data"]["points"] == 50
    view = await worker.wait_customer(
        cid,
        lambda c: any(a["kind"] == "points_expiring_reminder" for a in c["activity"]),
        "reminder on the activity",
    )
    assert view["points_balance"] == 50
    # later scheduler runs find nothing more to send: one order later, still one request
    await worker.send(names.ORDERS, paid(cid, "R2", "5.00", f"r2-{unique}", 0), cid)
    await worker.wait_customer(cid, lambda c: c["points_pending"] == 5, "R2 pending")
    assert len(reminders(await worker.outputs(names.NOTIFICATIONS))) == 1


async def test_rate_redemption_and_the_reward_back_when_its_order_is_cancelled(
    worker: WorkerUnderTest, unique: str
) -> None:
    cid = f"v-{unique}"
    await worker.send(names.CUSTOMERS, upsert(cid, unique), cid)
    adjust = {"delta": 900}
    await worker.send(
        names.ADJUSTMENTS, message("points.adjust", cid, adjust, f"a-{unique}", at(3)), cid
    )
    redeem = {"reward_id": "points-off", "points": 700}
    await worker.send(
        names.ADJUSTMENTS, message("reward.redeem", cid, redeem, f"x-{unique}", at(2)), cid
    )
    view = await worker.wait_customer(cid, lambda c: c["points_balance"] == 200, "redeemed")
    [grant] = [g for g in view["rewards"] if g["reward_id"] == "points-off"]

    def granted(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            m
            for m in distinct(found)
            if m["customer_id"] == cid
            and m["type"] == "reward.granted"
            and m["data"]["reward_id"] == "points-off"
        ]

    [output] = granted(await worker.wait_outputs(names.REWARDS, granted, "reward.granted"))
    value = output["data"]["value"]
    assert (value["kind"], value["amount"]) == ("amount_off", "7.00")
    await worker.send(
        names.ORDERS, paid(cid, "V1", "40.00", f"v1-{unique}", 1, reward_codes=[grant["code"]]), cid
    )
    await worker.wait_customer(
        cid,
        lambda c: [g["status"] for g in c["rewards"] if g["reward_id"] == "points-off"] == ["used"],
        "reward used",
    )
    cancel = message("order.cancelled", cid, {"order_id": "V1"}, f"v1c-{unique}", at(0))
    await worker.send(names.ORDERS, cancel, cid)
    await worker.wait_customer(
        cid,
        lambda c: (
            [g["status"] for g in c["rewards"] if g["reward_id"] == "points-off"] == ["issued"]
        ),
        "reward given back",
    )

    def reinstated(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            m
            for m in distinct(found)
            if m["customer_id"] == cid and m["type"] == "reward.reinstated"
        ]

    [back] = reinstated(await worker.wait_outputs(names.REWARDS, reinstated, "reinstated"))
    assert (back["data"]["code"], back["data"]["order_id"]) == (grant["code"], "V1")
