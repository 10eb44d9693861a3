"""`loyalty worker` against the local stack: state read back through GET /customers/<id>."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from settings import Settings
from tests.integration.waiting import eventually
from tests.integration.worker_kit import WorkerUnderTest
from topics import names
from workers.groups import member_command_id

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def at(days_ago: float = 0) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat()


def message(kind: str, customer: str, data: dict[str, Any], id: str, when: str) -> dict[str, Any]:
    return {"id": id, "type": kind, "customer_id": customer, "occurred_at": when, "data": data}


def upsert(customer: str, u: str, **data: Any) -> dict[str, Any]:
    body = {"email": f"{customer}-{u}@example.com", "first_name": "Ana", **data}
    return message("customer.upserted", customer, body, f"up-{customer}-{u}", at(400))


def paid(customer: str, order_id: str, total: str, id: str) -> dict[str, Any]:
    data = {"order_id": order_id, "total": total, "currency": "EUR", "items": []}
    return message("order.paid", customer, data, id, at(1))


@pytest.fixture(scope="module")
async def worker(
    stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WorkerUnderTest]:
    workdir: Path = tmp_path_factory.mktemp("worker")
    under_test = WorkerUnderTest(stack, uuid.uuid4().hex[:10], workdir, scheduler_interval="1")
    await under_test.start()
    yield under_test
    try:
        assert await under_test.stop() == 0, under_test.log()
        assert "Traceback" not in under_test.log(), under_test.log()
    finally:
        await under_test.close()


async def test_order_crossing_a_tier_threshold(worker: WorkerUnderTest, unique: str) -> None:
    cid = f"t-{unique}"
    await worker.send(names.CUSTOMERS, upsert(cid, unique), cid)
    await worker.send(names.ORDERS, paid(cid, "A1", "600.00", f"e1-{unique}"), cid)
    view = await worker.wait_customer(cid, lambda c: c["tier"] == "Silver", "tier Silver")
    assert view["points_balance"] == 600
    assert view["lifetime_spend"] == "600.00"
    [grant] = view["rewards"]
    assert (grant["reward_id"], grant["origin"], grant["status"]) == (
        "welcome-silver",
        "entry",
        "issued",
    )
    assert grant["code"]
    assert view["activity"][0]["at"] >= view["activity"][-1]["at"]  # newest first

    def upgrades(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [m for m in found if m["customer_id"] == cid and m["data"]["to_tier"] == "Silver"]

    changes = await worker.wait_outputs(names.TIER_CHANGES, upgrades, "tier.changed to Silver")
    [change] = upgrades(changes)
    assert change["data"]["direction"] == "up"
    assert change["data"]["cause"] == {"type": "order.paid", "id": f"e1-{unique}"}
    assert change["data"]["entry_rewards_granted"] == [grant["grant_id"]]

    def granted(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [m for m in found if m["customer_id"] == cid and m["type"] == "reward.granted"]

    rewards = await worker.wait_outputs(names.REWARDS, granted, "reward.granted")
    assert [r["data"]["grant_id"] for r in granted(rewards)] == [grant["grant_id"]]

    def upgrade_mail(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            m
            for m in found
            if m["customer_id"] == cid
            and m["data"]["kind"].startswith("tier_")
            and m["data"]["cause"]["id"] == f"e1-{unique}"
        ]

    mails = await worker.wait_outputs(names.NOTIFICATIONS, upgrade_mail, "upgrade notification")
    assert len(upgrade_mail(mails)) == 1

    # The command line reads the same object from the store, and a readable view of it.
    shown = await worker.cli("customer", "show", cid, "--json")
    assert json.loads(shown) == await worker.customer(cid)
    readable = await worker.cli("customer", "show", cid)
    assert "Silver" in readable
    assert "welcome-silver" in readable
    assert grant["code"] in readable


async def test_duplicates_are_applied_once(worker: WorkerUnderTest, unique: str) -> None:
    cid = f"d-{unique}"
    await worker.send(names.CUSTOMERS, upsert(cid, unique), cid)
    await worker.wait_customer(cid, lambda c: True, "customer created")
    first = paid(cid, "A1", "100.00", f"e1-{unique}")
    await worker.send(names.ORDERS, first, cid)
    await worker.send(names.ORDERS, first, cid)  # the same message twice
    await worker.send(names.ORDERS, paid(cid, "A1", "100.00", f"e2-{unique}"), cid)  # new id
    # A later order on the same partition: once it shows, the ones before it were handled.
    await worker.send(names.ORDERS, paid(cid, "A2", "10.00", f"e3-{unique}"), cid)
    view = await worker.wait_customer(
        cid, lambda c: c["lifetime_spend"] == "110.00", "the sentinel order applied"
    )
    assert view["points_balance"] == 110
    kinds = [a["kind"] for a in view["activity"] if a["cause"]["type"] == "order.paid"]
    assert kinds.count("order_paid") == 2


async def test_order_before_its_customer_is_applied_once_the_customer_exists(
    worker: WorkerUnderTest, unique: str
) -> None:
    cid = f"p-{unique}"
    sample = 'loyalty_events_total{outcome="parked",type="order.paid"}'

    async def parked_count() -> float:
        _, metrics = await worker.get("/metrics")
        lines = [line for line in metrics.splitlines() if line.startswith(sample)]
        return float(lines[0].split()[-1]) if lines else 0.0

    before = await parked_count()  # other tests of this module park orders too
    await worker.send(names.ORDERS, paid(cid, "A1", "42.00", f"e1-{unique}"), cid)

    async def parked() -> bool:
        return await parked_count() > before

    await eventually(parked, within=60, what="order parked", detail=worker.log)
    await worker.send(names.CUSTOMERS, upsert(cid, unique), cid)
    view = await worker.wait_customer(cid, lambda c: c["points_balance"] == 42, "parked order")
    assert view["lifetime_spend"] == "42.00"


async def test_bad_input_is_dead_lettered_and_the_stream_goes_on(
    worker: WorkerUnderTest, unique: str
) -> None:
    cid = f"b-{unique}"
    await worker.send(names.CUSTOMERS, upsert(cid, unique), cid)
    await worker.wait_customer(cid, lambda c: True, "customer created")
    bad = {
        "invalid_json": await worker.send(names.ORDERS, b'{"id": "x", "type": ', cid),
        "invalid_message": await worker.send(
            names.ORDERS, paid(cid, "A1", "-5", f"bad-{unique}"), cid
        ),
        "unknown_type": await worker.send(
            names.ORDERS, {**paid(cid, "A1", "5.00", f"u-{unique}"), "type": "order.shipped"}, cid
        ),
    }
    await worker.send(names.ORDERS, paid(cid, "A2", "30.00", f"ok-{unique}"), cid)
    await worker.wait_customer(cid, lambda c: c["points_balance"] == 30, "the valid order")

    def ours(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [d for d in found if d["key"] == cid]

    letters = ours(await worker.wait_outputs(names.DEAD_LETTER, lambda f: len(ours(f)) >= 3, "3"))
    assert {d["error_code"]: d["offset"] for d in letters} == bad
    assert all(d["topic"] == worker.topics.orders and d["error_message"] for d in letters)
    assert {d["value"] for d in letters if d["error_code"] == "invalid_json"} == {
        '{"id": "x", "type": '
    }


async def test_points_and_tier_expire_through_the_scheduler(
    worker: WorkerUnderTest, unique: str
) -> None:
    cid = f"s-{unique}"
    await worker.send(names.CUSTOMERS, upsert(cid, unique), cid)
    await worker.wait_customer(cid, lambda c: True, "customer created")
    adjust = {"delta": 100, "expires_in_months": 1, "customer_note": "welcome"}
    await worker.send(
        names.ADJUSTMENTS, message("points.adjust", cid, adjust, f"a-{unique}", at(60)), cid
    )
    manage = {
        "action": "upgrade",
        "strategy": "specific",
        "tier": "Gold",
        "expiry": {"kind": "duration", "days": 5},
    }
    await worker.send(
        names.TIER_COMMANDS, message("tier.manage", cid, manage, f"m-{unique}", at(10)), cid
    )

    def expired(c: dict[str, Any]) -> bool:
        causes = {a["cause"]["type"] for a in c["activity"]}
        # The adjustment and the tier command travel on different topics: wait for both.
        return (
            c["points_balance"] == 0
            and c["tier"] != "Gold"
            and {"points.adjust", "points.expire", "tier.expire"} <= causes
        )

    view = await worker.wait_customer(cid, expired, "points and Gold expired by the scheduler")
    causes = {a["cause"]["type"] for a in view["activity"]}
    assert {"points.adjust", "tier.manage", "points.expire", "tier.expire"} <= causes


async def test_group_command_fans_out_and_its_replay_changes_nothing(
    worker: WorkerUnderTest, unique: str
) -> None:
    members = [f"g1-{unique}", f"g2-{unique}"]
    outsider = f"g3-{unique}"
    for cid in members:
        await worker.send(names.CUSTOMERS, upsert(cid, unique, groups=["staff"]), cid)
    await worker.send(names.CUSTOMERS, upsert(outsider, unique), outsider)
    for cid in [*members, outsider]:
        await worker.wait_customer(cid, lambda c: True, f"{cid} created")
    data = {"action": "upgrade", "strategy": "specific", "tier": "Gold", "group_id": "staff"}
    command = message("tier.manage", "group:staff", data, f"grp-{unique}", at(0.01))
    await worker.send(names.TIER_COMMANDS, command, "group:staff")
    await worker.send(names.TIER_COMMANDS, command, "group:staff")  # replayed
    ids = {member_command_id(f"grp-{unique}", cid) for cid in members}

    def copies(found: list[dict[str, Any]]) -> list[str]:
        return [m["id"] for m in found if m["id"] in ids]

    def fanned_out_twice(found: list[dict[str, Any]]) -> bool:
        return set(copies(found)) == ids and len(copies(found)) >= 4

    await worker.wait_outputs(
        names.TIER_COMMANDS, fanned_out_twice, "two fan-outs", every_copy=True
    )
    for cid in members:
        # An unknown tier is refused on the activity; once that shows, the copies before it ran.
        sentinel = message("tier.change", cid, {"tier": "Nope"}, f"sent-{cid}", at(0.005))
        await worker.send(names.TIER_COMMANDS, sentinel, cid)
        view = await worker.wait_customer(
            cid,
            lambda c: any(a["cause"]["id"] == f"sent-{c['customer_id']}" for a in c["activity"]),
            "sentinel refused",
        )
        assert view["tier"] == "Gold"
        member_id = member_command_id(f"grp-{unique}", cid)
        assert [a["kind"] for a in view["activity"] if a["cause"]["id"] == member_id].count(
            "tier_changed"
        ) == 1
    assert (await worker.customer(outsider) or {})["tier"] != "Gold"


async def test_command_for_a_removed_customer_is_refused_on_the_activity(
    worker: WorkerUnderTest, unique: str
) -> None:
    cid = f"r-{unique}"
    await worker.send(names.CUSTOMERS, upsert(cid, unique), cid)
    removed = message("customer.removed", cid, {"reason": "asked to leave"}, f"rm-{unique}", at(1))
    await worker.send(names.CUSTOMERS, removed, cid)
    await worker.wait_customer(cid, lambda c: c["status"] == "removed", "customer removed")
    adjust = message("points.adjust", cid, {"delta": 50}, f"adj-{unique}", at(0.5))
    await worker.send(names.ADJUSTMENTS, adjust, cid)

    def refused(c: dict[str, Any]) -> bool:
        return any(a["cause"]["id"] == f"adj-{unique}" for a in c["activity"])

    view = await worker.wait_customer(cid, refused, "refusal on the activity")
    [entry] = [a for a in view["activity"] if a["cause"]["id"] == f"adj-{unique}"]
    assert entry["kind"] == "rejected"
    assert entry["details"]["code"] == "customer_removed"
    assert "removed" in entry["details"]["reason"]
    assert view["points_balance"] == 0


async def test_sigterm_finishes_the_batch_in_flight_and_commits_it(
    stack: Settings, tmp_path: Path, unique: str
) -> None:
    """After a graceful stop nothing the first worker applied is delivered to the next one."""
    customers, orders = 20, 1500
    first = WorkerUnderTest(stack, f"g{unique}", tmp_path, worker_batch_size="100")
    await first.start()
    ids = [f"c{n}-{unique}" for n in range(customers)]
    try:
        for cid in ids:
            await first.send(names.CUSTOMERS, upsert(cid, unique), cid)
        for cid in ids:
            await first.wait_customer(cid, lambda c: True, "customer created")
        for n in range(orders):
            cid = ids[n % customers]
            await first.send(names.ORDERS, paid(cid, f"A{n}", "1.00", f"o{n}-{unique}"), cid)

        async def busy() -> bool:
            return await first.applied("order.paid") >= 200

        await eventually(busy, within=60, what="first worker applying orders", detail=first.log)
        assert await first.stop() == 0, first.log()
    finally:
        await first.close()
    log = first.log()
    assert "Traceback" not in log, log
    second = WorkerUnderTest(stack, f"g{unique}", tmp_path, worker_batch_size="100")
    await second.start()
    try:
        for cid in ids:
            await second.wait_customer(
                cid, lambda c: c["lifetime_spend"] == f"{orders // customers}.00", "all orders"
            )
        # Everything the first worker applied was committed: none of it came back.
        assert await second.count("order.paid", "skipped") == 0
        assert await second.count("order.paid", "duplicate") == 0
        assert await second.applied("order.paid") < orders
    finally:
        assert await second.stop() == 0, second.log()
        await second.close()
