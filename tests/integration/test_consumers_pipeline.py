"""The whole path: `loyalty worker` applies orders, the consumers email and keep the coupons."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from consumers.app import serving
from settings import Settings
from stack.smtp import SmtpService
from tests.integration.admin_helpers import running_worker
from tests.integration.consumers_support import isolated, mails_to
from tests.integration.waiting import eventually
from tests.integration.worker_kit import WorkerUnderTest
from topics import names

NOW = datetime.now(UTC)


def _message(kind: str, customer: str, data: dict[str, Any], message_id: str) -> dict[str, Any]:
    when = (NOW - timedelta(hours=1)).isoformat()
    return {
        "id": message_id,
        "type": kind,
        "customer_id": customer,
        "occurred_at": when,
        "data": data,
    }


@pytest.fixture
async def worker(
    stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WorkerUnderTest]:
    async with running_worker(stack, tmp_path_factory.mktemp("worker")) as under_test:
        yield under_test


async def test_upgrade_email_and_coupon_follow_the_orders(
    stack: Settings, worker: WorkerUnderTest, smtp: SmtpService, unique: str, tmp_path: Path
) -> None:
    settings = isolated(
        stack,
        unique,
        tmp_path,
        topic_namespace=worker.topics.namespace,
        mongo_database=worker.database,
        topic_partitions=stack.topic_partitions,
    )
    cid, address = f"p-{unique}", f"pipe-{unique}@example.test"
    async with serving(settings, ["rewards", "notifier"]):
        await worker.send(
            names.CUSTOMERS,
            _message(
                "customer.upserted",
                cid,
                {"email": address, "first_name": "<script>alert(1)</script>"},
                f"u-{unique}",
            ),
            cid,
        )
        await worker.send(
            names.ORDERS,
            _message(
                "order.paid",
                cid,
                {"order_id": "A1", "total": "600.00", "currency": "EUR", "items": []},
                f"o1-{unique}",
            ),
            cid,
        )

        async def emailed() -> bool:
            return len(mails_to(smtp.mail_dir, address)) >= 1

        await eventually(emailed, within=90, what="the upgrade email", detail=worker.log)
        [mail] = mails_to(smtp.mail_dir, address)
        assert "Silver" in mail["Subject"]
        customer = await worker.customer(cid)
        assert customer is not None
        [grant] = [r for r in customer["rewards"] if r["reward_id"] == "welcome-silver"]
        code = grant["code"]
        text = mail.get_body(preferencelist=("plain",)).get_content()
        html = mail.get_body(preferencelist=("html",)).get_content()
        assert code in text
        assert code in html
        assert "5 EUR off" in text
        assert "&lt;script&gt;" in html
        assert "<script>" not in html

        async def coupon_status(expected: str, code: str = code) -> None:
            url = f"http://127.0.0.1:{settings.consumers_web_port}/coupons/{code}"
            seen: dict[str, Any] = {}

            async def check() -> bool:
                async with aiohttp.ClientSession() as http, http.get(url) as response:
                    seen["body"] = await response.json()
                return seen["body"]["status"] == expected

            await eventually(
                check, within=60, what=f"coupon {expected}", detail=lambda: str(seen.get("body"))
            )

        await coupon_status("valid")
        await worker.send(
            names.ORDERS,
            _message(
                "order.paid",
                cid,
                {
                    "order_id": "A2",
                    "total": "20.00",
                    "currency": "EUR",
                    "items": [],
                    "reward_codes": [code.lower()],
                },
                f"o2-{unique}",
            ),
            cid,
        )
        await coupon_status("used")

        # A redemption's coupon, then revoked by an admin.
        await worker.send(
            names.ADJUSTMENTS,
            _message("points.adjust", cid, {"delta": 400}, f"a1-{unique}"),
            cid,
        )
        await worker.send(
            names.ADJUSTMENTS,
            _message("reward.redeem", cid, {"reward_id": "tote-bag"}, f"r1-{unique}"),
            cid,
        )
        redeemed = await worker.wait_customer(
            cid,
            lambda c: any(r["reward_id"] == "tote-bag" for r in c["rewards"]),
            "the tote bag grant",
        )
        [tote] = [r for r in redeemed["rewards"] if r["reward_id"] == "tote-bag"]
        await coupon_status("valid", tote["code"])
        await worker.send(
            names.ADJUSTMENTS,
            _message("reward.revoke", cid, {"grant_id": tote["grant_id"]}, f"v1-{unique}"),
            cid,
        )
        await coupon_status("revoked", tote["code"])

        async def redemption_emailed() -> bool:
            return len(mails_to(smtp.mail_dir, address)) >= 2

        await eventually(redemption_emailed, within=60, what="the redemption email")
    # The upgrade and the redemption; none for the order that used the code (nor the revoke,
    # which program.example.yaml keeps quiet).
    subjects = sorted(str(m["Subject"]) for m in mails_to(smtp.mail_dir, address))
    assert len(subjects) == 2, subjects
