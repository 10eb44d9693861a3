"""Input that tries to escape, through a real worker and MongoDB: stored as data or refused.

Operator-looking and dotted keys, `$` values, NUL bytes, 100k-character strings and deeply
nested JSON: each message is either applied with its text stored verbatim, or dead-lettered
with a reason; the worker never restarts and the next valid message is applied.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bootstrap import mongo_client
from settings import Settings
from tests.integration.worker_kit import WorkerUnderTest
from topics import names

pytestmark = pytest.mark.integration

LONG = "x" * 100_000


def message(kind: str, cid: Any, data: Any, id: str) -> dict[str, Any]:
    when = datetime.now(UTC).isoformat()
    return {"id": id, "type": kind, "customer_id": cid, "occurred_at": when, "data": data}


def paid(cid: str, order_id: str, total: str, id: str, **extra: Any) -> dict[str, Any]:
    data = {"order_id": order_id, "total": total, "currency": "EUR", "items": [], **extra}
    return message("order.paid", cid, data, id)


@pytest.fixture(scope="module")
async def worker(
    stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WorkerUnderTest]:
    workdir: Path = tmp_path_factory.mktemp("hostile")
    under_test = WorkerUnderTest(stack, uuid.uuid4().hex[:10], workdir)
    await under_test.start()
    yield under_test
    try:
        process = under_test.process.process
        assert process is not None
        assert process.poll() is None, "the worker died:\n" + under_test.log()  # never restarted
        assert await under_test.stop() == 0, under_test.log()
        assert "Traceback" not in under_test.log(), under_test.log()
    finally:
        await under_test.close()


async def test_hostile_input_is_stored_as_data_or_refused(
    worker: WorkerUnderTest, stack: Settings, unique: str
) -> None:
    cid = f"h-{unique}"
    profile = {
        "email": f"{cid}@example.com",
        "first_name": "$ne",
        "last_name": '{"$gt": ""}\x00.$where',
    }
    await worker.send(names.CUSTOMERS, message("customer.upserted", cid, profile, f"u-{cid}"), cid)
    # Stored verbatim: operator-looking text, dotted and `$` keys, NUL bytes, 100k characters.
    stored_as_data = [
        (names.ADJUSTMENTS, message(
            "points.adjust", cid,
            {"delta": 7, "internal_note": '{"$set": {"points_balance": 1e9}}',
             "customer_note": "a.b.$c\x00d"},
            f"n-{cid}")),
        (names.ORDERS, paid(
            cid, "o.$1\x00", "10.00", f"p-{cid}",
            extended_fields={"$where": "sleep(100)", "a.b": "x", "$gt": 1, "nul\x00key": "\x00"})),
    ]  # fmt: skip
    for topic, value in stored_as_data:
        await worker.send(topic, value, cid)
    other = f"hl-{unique}"
    long_profile = {"email": f"{other}@example.com", "first_name": LONG, "last_name": "A\x00B"}
    await worker.send(
        names.CUSTOMERS, message("customer.upserted", other, long_profile, f"u-{other}"), other
    )
    # Refused with a reason (dead-lettered): values that are not what the contract says.
    nested = "[" * 50_000 + "]" * 50_000
    refused = {
        "deep": b'{"id": "d", "type": "order.paid", "data": ' + nested.encode() + b"}",
        "operator email": message("customer.upserted", cid, {"email": {"$ne": None}}, f"e-{cid}"),
        "operator id": message("points.adjust", {"$gt": ""}, {"delta": 1}, f"i-{cid}"),
        "long note": message("points.adjust", cid, {"delta": 1, "internal_note": LONG}, f"l-{cid}"),
        "operator ext": paid(cid, "o2", "1.00", f"x-{cid}", extended_fields={"$gt": {"$ne": 1}}),
        "long id": message("points.adjust", cid, {"delta": 1}, LONG),
        "nul type": {**message("points.adjust", cid, {"delta": 1}, f"t-{cid}"), "type": "a\x00"},
    }
    offsets = {}
    for name, value in refused.items():
        topic = names.ORDERS if name in {"deep", "operator ext"} else names.ADJUSTMENTS
        if name == "operator email":
            topic = names.CUSTOMERS
        offsets[name] = (worker.topics.name(topic), await worker.send(topic, value, cid))
    await worker.send(names.ORDERS, paid(cid, "o-valid", "30.00", f"v-{cid}"), cid)

    view = await worker.wait_customer(
        cid, lambda c: c["points_balance"] == 47, "the valid messages applied (7 + 10 + 30)"
    )
    assert (view["first_name"], view["last_name"]) == (profile["first_name"], profile["last_name"])
    notes = {(e.get("internal_note"), e.get("customer_note")) for e in view["activity"]}
    assert ('{"$set": {"points_balance": 1e9}}', "a.b.$c\x00d") in notes
    long_view = await worker.wait_customer(other, lambda c: True, "the long-named customer")
    assert (long_view["first_name"], long_view["last_name"]) == (LONG, "A\x00B")

    def ours(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [d for d in found if d["key"] == cid]

    letters = ours(
        await worker.wait_outputs(
            names.DEAD_LETTER, lambda f: len(ours(f)) >= len(refused), "every refusal"
        )
    )
    by_place = {(d["topic"], d["offset"]): d for d in letters}
    for name, place in offsets.items():
        assert place in by_place, f"{name} was not dead-lettered: {sorted(by_place)}"
        letter = by_place[place]
        assert letter["error_code"] in {"invalid_json", "invalid_message", "unknown_type"}, letter
        assert letter["error_message"], letter
    assert len(letters) == len(refused)  # nothing valid was dead-lettered

    client = mongo_client(stack)
    try:
        database = client[worker.database]
        # The operators in the data did not run: one customer each, balances as computed.
        assert await database["customers"].count_documents({"_id": {"$in": [cid, other]}}) == 2
        assert await database["customers"].count_documents({}) == 2
    finally:
        await client.close()
    health = await worker.get("/health")
    assert health[0] == 200
    assert json.dumps(health[1])  # still answering, same process
