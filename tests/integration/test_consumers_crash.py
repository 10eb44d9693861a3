"""SIGKILL the notifier mid-stream: after a restart every notification has its email."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from aiosmtpd.controller import Controller

from settings import Settings
from tests.integration.consumers_support import (
    RecordingSmtp,
    free_port,
    isolated,
    notification,
    publish,
)
from tests.integration.waiting import eventually
from topics import names

REQUESTS = 80


class SlowSmtp(RecordingSmtp):
    """Accepts every message after a short pause, so the kill lands mid-stream."""

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


def _start(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "LOYALTY_TOPIC_NAMESPACE": settings.topic_namespace,
        "LOYALTY_MONGO_DATABASE": settings.mongo_database,
        "LOYALTY_SMTP_PORT": str(settings.smtp_port),
        "LOYALTY_CONSUMERS_WEB_PORT": str(settings.consumers_web_port),
        "LOYALTY_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "LOYALTY_SMTP_CONNECTIONS": "4",
    }
    loyalty = Path(sys.executable).with_name("loyalty")
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(loyalty), "consumers", "--only", "notifier"], env=env, stdout=out, stderr=out
        )


async def test_killed_notifier_loses_no_notification(
    stack: Settings, unique: str, tmp_path: Path
) -> None:
    settings = isolated(stack, unique, tmp_path, smtp_port=free_port())
    handler = SlowSmtp()
    controller = Controller(handler, hostname="127.0.0.1", port=settings.smtp_port)
    controller.start()
    addresses = [f"k{n}-{unique}@example.test" for n in range(REQUESTS)]
    log = tmp_path / "consumers.log"
    process = _start(settings, log)
    try:
        await publish(
            settings,
            names.NOTIFICATIONS,
            [notification(f"c{n}-{unique}", email_address=a) for n, a in enumerate(addresses)],
        )

        async def some_sent() -> bool:
            return len(handler.received) >= 10

        await eventually(some_sent, within=60, what="the first emails", detail=log.read_text)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert len(handler.received) < REQUESTS, "the kill came too late to prove anything"

        process = _start(settings, log)

        async def all_sent() -> bool:
            return all(handler.to(address) for address in addresses)

        await eventually(
            all_sent, within=120, what="every email after restart", detail=log.read_text
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        controller.stop()
    # Only emails the server accepted but the ledger had not yet recorded may go twice: at most
    # two per SMTP connection (4) at the kill.
    assert REQUESTS <= len(handler.received) <= REQUESTS + 2 * 4
