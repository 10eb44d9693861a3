"""Helpers for the consumers' integration tests: isolated settings, publishing, reading mail."""

from __future__ import annotations

import email
import json
import socket
from collections.abc import Iterable
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from settings import Settings
from tests.integration.pipeline_harness import read_to_end
from topics.names import Topics


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def isolated(settings: Settings, unique: str, tmp_path: Path, **changes: Any) -> Settings:
    """Settings of one test: own topic namespace, database, web port and analytics file."""
    update: dict[str, Any] = {
        "topic_namespace": f"t{unique}-",
        "mongo_database": f"consumers_{unique}",
        "consumers_web_port": free_port(),
        "tier_changes_file": tmp_path / "tier-changes.jsonl",
        "consumer_retry_base": 0.05,
        "consumer_retry_max": 0.5,
        "topic_partitions": 2,
    }
    update.update(changes)
    return settings.model_copy(update=update)


def notification(
    customer_id: str,
    *,
    kind: str = "tier_upgraded",
    email_address: str,
    first_name: str | None = None,
    template_data: dict[str, Any] | None = None,
    message_id: str | None = None,
    batch: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return a notification.requested message as the rules emit it."""
    return {
        "id": message_id or f"{customer_id}:notification:{kind}",
        "type": "notification.requested",
        "customer_id": customer_id,
        "occurred_at": datetime.now(UTC).isoformat(),
        "source": "loyalty",
        "batch": batch,
        "data": {
            "kind": kind,
            "email": email_address,
            "first_name": first_name,
            "cause": {"type": "order.paid", "id": f"{customer_id}:order"},
            "template_data": template_data
            or {"from_tier": "Bronze", "to_tier": "Gold", "direction": "up", "benefits": []},
        },
    }


async def publish(settings: Settings, topic: str, messages: Iterable[dict[str, Any]]) -> None:
    """Publish messages (keyed by customer id) to a contract topic under the test's namespace."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        name = Topics(settings.topic_namespace).name(topic)
        for message in messages:
            await producer.send_and_wait(
                name, json.dumps(message).encode(), key=message["customer_id"].encode()
            )
    finally:
        await producer.stop()


async def read_topic(settings: Settings, topic: str) -> list[dict[str, Any]]:
    """Return every message on a namespaced topic, up to its end offsets when called."""
    return await read_to_end(settings, Topics(settings.topic_namespace).name(topic))


def mails_to(mail_dir: Path, address: str) -> list[EmailMessage]:
    """Return the messages the SMTP sink received for this recipient."""
    found = []
    for path in mail_dir.glob("*.eml"):
        raw = path.read_bytes()
        if address.encode() not in raw[:2000]:
            continue
        message = email.message_from_bytes(raw, policy=policy.default)
        if message["X-Envelope-To"] == address:
            found.append(message)  # type: ignore[arg-type]
    return found


def counted(metrics: Any, name: str, **labels: str) -> float:
    """Return a counter's value from a metrics registry (0 when never incremented)."""
    value = metrics.registry.get_sample_value(f"{name}_total", labels)
    return 0.0 if value is None else float(value)


def finished(metrics: Any, consumer: str) -> float:
    """Return how many messages a consumer has finished, whatever the outcome."""
    return sum(
        counted(metrics, "loyalty_consumer_messages", consumer=consumer, outcome=outcome)
        for outcome in ("done", "skipped", "dead_letter")
    )


class RecordingSmtp:
    """An aiosmtpd handler that keeps messages and refuses some recipients (by prefix)."""

    def __init__(
        self, *, refuse: str = "bounce-", busy: str = "busy-", busy_times: int = 2
    ) -> None:
        self.received: list[EmailMessage] = []
        self.refuse = refuse
        self.busy = busy
        self.busy_left: dict[str, int] = {}
        self.busy_times = busy_times

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.startswith(self.refuse):
            return "550 5.1.1 mailbox does not exist"
        if address.startswith(self.busy):
            left = self.busy_left.setdefault(address, self.busy_times)
            if left > 0:
                self.busy_left[address] = left - 1
                return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        message = email.message_from_bytes(envelope.original_content, policy=policy.default)
        self.received.append(message)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.received if m["To"] == address]
