"""The email notifier against the real stack: Kafka in, the local SMTP sink out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd.controller import Controller

from bootstrap import mongo_client
from consumers.app import serving
from models.state import CustomerState
from settings import Settings
from stack.smtp import SmtpService
from tests.integration.consumers_support import (
    RecordingSmtp,
    counted,
    finished,
    free_port,
    isolated,
    mails_to,
    notification,
    publish,
    read_topic,
)
from tests.integration.waiting import eventually
from topics import names
from topics.names import Topics


async def test_tier_upgrade_sends_one_escaped_email(
    stack: Settings, smtp: SmtpService, unique: str, tmp_path: Path
) -> None:
    settings = isolated(stack, unique, tmp_path)
    address = f"up-{unique}@example.test"
    message = notification(
        f"c-{unique}",
        email_address=address,
        first_name="<script>alert(1)</script>",
        template_data={
            "from_tier": "Silver",
            "to_tier": "Gold",
            "direction": "up",
            "benefits": ["Free shipping"],
            "rewards": [
                {"reward_id": "welcome-gold", "reward_name": "10 EUR off", "code": "GOLDCODE42"}
            ],
        },
    )
    async with serving(settings, ["notifier"], web=False):
        await publish(settings, names.NOTIFICATIONS, [message, message])

        async def arrived() -> bool:
            return len(mails_to(smtp.mail_dir, address)) >= 1

        await eventually(arrived, within=60, what="the upgrade email")
    [mail] = mails_to(smtp.mail_dir, address)
    assert "Gold" in mail["Subject"]
    assert mail["To"] == address
    text = mail.get_body(preferencelist=("plain",)).get_content()
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert "Gold" in text
    assert "GOLDCODE42" in text
    assert "GOLDCODE42" in html
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def _store_customer(settings: Settings, customer_id: str, address: str, **fields) -> None:
    """Put a customer record where the notifier reads the customers' current state."""
    state = CustomerState(
        customer_id=customer_id,
        email=address,
        email_normalized=address.casefold(),
        joined_at=datetime.now(UTC),
        **fields,
    )
    client = mongo_client(settings)
    try:
        await client[settings.mongo_database]["customers"].replace_one(
            {"_id": customer_id},
            {"_id": customer_id, "state": state.model_dump(mode="json")},
            upsert=True,
        )
    finally:
        await client.close()


async def test_suppressed_batch_removed_and_opted_out_customers_get_no_email(
    stack: Settings, smtp: SmtpService, unique: str, tmp_path: Path
) -> None:
    settings = isolated(stack, unique, tmp_path)
    removed, opted_out = f"gone-{unique}@example.test", f"quiet-{unique}@example.test"
    imported, control = f"import-{unique}@example.test", f"ok-{unique}@example.test"
    await _store_customer(settings, f"gone-{unique}", removed, status="removed")
    await _store_customer(settings, f"quiet-{unique}", opted_out, accepts_email=False)
    await _store_customer(settings, f"ok-{unique}", control)
    # Forgotten after the request was made: the request still carries the old address.
    erased = f"erased-{unique}@example.test"
    await _store_customer(settings, f"erased-{unique}", "", status="forgotten", accepts_email=False)
    messages = [
        notification(f"erased-{unique}", email_address=erased),
        notification(f"gone-{unique}", email_address=removed),
        notification(f"quiet-{unique}", email_address=opted_out),
        notification(
            f"import-{unique}",
            email_address=imported,
            batch={"id": f"b-{unique}", "row": 2, "suppress_notifications": True},
        ),
        notification(f"ok-{unique}", email_address=control),
    ]
    async with serving(settings, ["notifier"], web=False) as running:
        await publish(settings, names.NOTIFICATIONS, messages)

        async def all_finished() -> bool:
            return finished(running.metrics, "notifier") >= len(messages)

        await eventually(all_finished, within=60, what="the notifier to finish 5 requests")
    assert len(mails_to(smtp.mail_dir, control)) == 1
    for address in (removed, opted_out, imported, erased):
        assert mails_to(smtp.mail_dir, address) == [], address
    skipped = {
        reason: counted(
            running.metrics, "loyalty_notifier_emails", kind="tier_upgraded", result=reason
        )
        for reason in (
            "customer_removed",
            "customer_forgotten",
            "opted_out",
            "suppressed_batch",
            "sent",
        )
    }
    assert skipped == {
        "customer_removed": 1,
        "customer_forgotten": 1,
        "opted_out": 1,
        "suppressed_batch": 1,
        "sent": 1,
    }


async def test_the_same_notification_later_sends_no_second_email(
    stack: Settings, smtp: SmtpService, unique: str, tmp_path: Path
) -> None:
    settings = isolated(stack, unique, tmp_path)
    address = f"twice-{unique}@example.test"
    message = notification(f"c-{unique}", email_address=address)
    async with serving(settings, ["notifier"], web=False) as running:
        await publish(settings, names.NOTIFICATIONS, [message])

        async def sent() -> bool:
            return len(mails_to(smtp.mail_dir, address)) == 1

        await eventually(sent, within=60, what="the first email")
        await publish(settings, names.NOTIFICATIONS, [message])

        async def second_seen() -> bool:
            return finished(running.metrics, "notifier") >= 2

        await eventually(second_seen, within=60, what="the repeated request to be handled")
    # A restarted notifier (new process, same group) sees it again only if uncommitted; the
    # ledger answers either way.
    assert len(mails_to(smtp.mail_dir, address)) == 1
    assert (
        counted(
            running.metrics, "loyalty_notifier_emails", kind="tier_upgraded", result="duplicate"
        )
        == 1
    )


async def test_smtp_outage_holds_the_email_until_the_server_is_back(
    stack: Settings, unique: str, tmp_path: Path
) -> None:
    port = free_port()
    settings = isolated(stack, unique, tmp_path, smtp_port=port)
    address = f"later-{unique}@example.test"
    handler = RecordingSmtp()
    async with serving(settings, ["notifier"], web=False) as running:
        await publish(
            settings, names.NOTIFICATIONS, [notification(f"c-{unique}", email_address=address)]
        )

        async def waiting_for_smtp() -> bool:
            return (
                counted(running.metrics, "loyalty_consumer_outage_retries", consumer="notifier")
                >= 2
            )

        await eventually(waiting_for_smtp, within=60, what="the notifier to notice the outage")
        assert not await running.loops[0].ready()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        try:

            async def delivered() -> bool:
                return len(handler.to(address)) >= 1

            await eventually(delivered, within=60, what="the email once SMTP is back")
        finally:
            controller.stop()
    assert len(handler.to(address)) == 1
    assert await read_topic(settings, names.DEAD_LETTER) == []


async def test_permanent_refusal_is_dead_lettered_and_others_still_get_theirs(
    stack: Settings, unique: str, tmp_path: Path
) -> None:
    port = free_port()
    settings = isolated(stack, unique, tmp_path, smtp_port=port)
    handler = RecordingSmtp()
    bounce, busy, good = (
        f"bounce-{unique}@example.test",
        f"busy-{unique}@example.test",
        f"good-{unique}@example.test",
    )
    messages = [
        notification(f"b-{unique}", email_address=bounce),
        notification(f"x-{unique}", email_address=busy),
        notification(f"g-{unique}", email_address=good),
        notification(f"i-{unique}", email_address="not-an-address"),
    ]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        async with serving(settings, ["notifier"], web=False) as running:
            await publish(settings, names.NOTIFICATIONS, messages)

            async def all_finished() -> bool:
                return finished(running.metrics, "notifier") >= len(messages)

            await eventually(all_finished, within=60, what="all four requests handled")
    finally:
        controller.stop()
    assert len(handler.to(good)) == 1
    assert len(handler.to(busy)) == 1  # two 451s, then accepted: retried, sent once
    assert handler.to(bounce) == []
    letters = {
        json.loads(letter["value"])["customer_id"]: letter
        for letter in await read_topic(settings, names.DEAD_LETTER)
    }
    assert set(letters) == {f"b-{unique}", f"i-{unique}"}
    assert letters[f"b-{unique}"]["error_code"] == "smtp_rejected"
    assert "550" in letters[f"b-{unique}"]["error_message"]
    assert letters[f"i-{unique}"]["error_code"] == "invalid_address"
    assert letters[f"b-{unique}"]["topic"] == Topics(settings.topic_namespace).notifications
