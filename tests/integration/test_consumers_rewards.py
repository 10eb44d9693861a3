"""The coupon registry and GET /coupons/<code> against the real stack."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from bootstrap import mongo_client
from consumers.app import serving
from consumers.rewards import COUPONS_COLLECTION
from models.outputs import Cause
from models.state import CustomerState, RewardGrant
from settings import Settings
from tests.integration.consumers_support import counted, finished, isolated, publish, read_topic
from tests.integration.waiting import eventually
from topics import names


def reward_event(
    kind: str, customer_id: str, grant_id: str, message_id: str, **data: Any
) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": kind,
        "customer_id": customer_id,
        "occurred_at": datetime.now(UTC).isoformat(),
        "source": "loyalty",
        "data": {"grant_id": grant_id, "reward_id": "welcome-gold", **data},
    }


async def _coupon(settings: Settings, code: str, token: str | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"http://127.0.0.1:{settings.consumers_web_port}/coupons/{code}"
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.json()


async def test_grant_becomes_one_coupon_that_follows_use_and_revoke(
    stack: Settings, unique: str, tmp_path: Path
) -> None:
    settings = isolated(stack, unique, tmp_path)
    customer, code, other_code = f"c-{unique}", f"GOLD{unique}".upper(), f"TOTE{unique}".upper()
    value = {"kind": "amount_off", "amount": "10.00"}
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    granted = reward_event(
        "reward.granted",
        customer,
        f"g1-{unique}",
        f"m1-{unique}",
        code=code,
        value=value,
        valid_until=until,
    )
    second = reward_event(
        "reward.granted", customer, f"g2-{unique}", f"m2-{unique}", code=other_code
    )
    expired = reward_event(
        "reward.granted",
        customer,
        f"g3-{unique}",
        f"m3-{unique}",
        code=f"OLD{unique}".upper(),
        valid_until=(datetime.now(UTC) - timedelta(days=1)).isoformat(),
    )
    clash = reward_event(
        "reward.granted", f"other-{unique}", f"g4-{unique}", f"m4-{unique}", code=code
    )
    async with serving(settings, ["rewards"]) as running:

        async def handled(count: int) -> None:
            async def check() -> bool:
                return finished(running.metrics, "rewards") >= count

            await eventually(check, within=60, what=f"{count} reward events handled")

        await publish(settings, names.REWARDS, [granted, granted, second, expired])
        await handled(4)  # every message finishes: the repeated grant as a no-op
        # The clash is keyed by another customer, so it may sit on another partition and
        # overtake the first grant; it goes out once that grant holds the code.
        await publish(settings, names.REWARDS, [clash])
        await handled(5)
        status, body = await _coupon(settings, code)
        assert status == 200
        assert body["status"] == "valid"
        assert body["customer_id"] == customer
        assert body["value"] == value
        assert (await _coupon(settings, f"OLD{unique}".upper()))[1]["status"] == "expired"
        assert (await _coupon(settings, "NO-SUCH-CODE"))[1]["status"] == "unknown"

        used = reward_event(
            "reward.used", customer, f"g1-{unique}", f"m5-{unique}", code=code, order_id="o-1"
        )
        revoked = reward_event("reward.revoked", customer, f"g2-{unique}", f"m6-{unique}")
        await publish(settings, names.REWARDS, [used, revoked, granted])
        await handled(8)
        answer = (await _coupon(settings, code))[1]
        assert answer["status"] == "used"
        assert "o-1" in answer["reason"]
        assert (await _coupon(settings, other_code))[1]["status"] == "revoked"

        reinstated = reward_event("reward.reinstated", customer, f"g1-{unique}", f"m7-{unique}")
        await publish(settings, names.REWARDS, [reinstated, used])  # a stale repeat of m5 too
        await handled(10)
        assert (await _coupon(settings, code))[1]["status"] == "valid"

    client = mongo_client(settings)
    try:
        coupons = client[settings.mongo_database][COUPONS_COLLECTION]
        assert await coupons.count_documents({"code": code}) == 1
        assert await coupons.count_documents({"customer_id": customer}) == 3
    finally:
        await client.close()
    letters = await read_topic(settings, names.DEAD_LETTER)
    assert [letter["error_code"] for letter in letters] == ["duplicate_code"]
    assert json.loads(letters[0]["value"])["id"] == f"m4-{unique}"
    assert counted(running.metrics, "loyalty_rewards_duplicate_codes") == 1


async def test_coupon_answers_need_the_token_when_one_is_set(
    stack: Settings, unique: str, tmp_path: Path
) -> None:
    settings = isolated(stack, unique, tmp_path, api_token=SecretStr("s3cret-token"))
    async with serving(settings, ["rewards"]):
        assert (await _coupon(settings, "ANY"))[0] == 401
        assert (await _coupon(settings, "ANY", token="wrong"))[0] == 401
        status, body = await _coupon(settings, "ANY", token="s3cret-token")
        assert status == 200
        assert body["status"] == "unknown"
        url = f"http://127.0.0.1:{settings.consumers_web_port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/health") as response:
                assert response.status == 200
                assert (await response.json())["checks"] == {"rewards": True}
            async with session.get(f"{url}/metrics") as response:
                assert "loyalty_consumer_messages" in await response.text()


def test_rebuild_from_customer_documents_and_reward_check(
    stack: Settings, unique: str, tmp_path: Path
) -> None:
    settings = isolated(stack, unique, tmp_path)
    now = datetime.now(UTC)
    grants = (
        RewardGrant(
            grant_id=f"g1-{unique}",
            reward_id="welcome-gold",
            code=f"RB{unique}".upper(),
            status="issued",
            origin="entry",
            granted_at=now,
            cause=Cause(type="order.paid", id="o"),
            valid_until=now + timedelta(days=5),
        ),
        RewardGrant(
            grant_id=f"g2-{unique}",
            reward_id="tote-bag",
            code=f"RU{unique}".upper(),
            status="used",
            origin="redemption",
            granted_at=now,
            cause=Cause(type="reward.redeem", id="r"),
            used_at=now,
            used_on_order="o-7",
        ),
    )
    state = CustomerState(
        customer_id=f"c-{unique}",
        email=f"c-{unique}@example.test",
        email_normalized=f"c-{unique}@example.test",
        joined_at=now,
        rewards=grants,
    )

    async def seed() -> None:
        client = mongo_client(settings)
        try:
            await client[settings.mongo_database]["customers"].insert_one(
                {"_id": state.customer_id, "state": state.model_dump(mode="json")}
            )
        finally:
            await client.close()

    asyncio.run(seed())
    env = {**os.environ, "LOYALTY_MONGO_DATABASE": settings.mongo_database}
    loyalty = str(Path(sys.executable).with_name("loyalty"))
    rebuilt = subprocess.run(
        [loyalty, "reward", "rebuild"], env=env, capture_output=True, text=True, check=False
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "2 coupons" in rebuilt.stdout

    def check(code: str) -> tuple[int, dict]:
        done = subprocess.run(
            [loyalty, "reward", "check", code, "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        return done.returncode, json.loads(done.stdout)

    assert check(f"rb{unique} ") == (0, check(f"RB{unique}")[1])
    assert check(f"RB{unique}")[1]["status"] == "valid"
    code, answer = check(f"RU{unique}")
    assert (code, answer["status"]) == (3, "used")
    assert "o-7" in answer["reason"]
    assert check("NOPE")[1]["status"] == "unknown"
