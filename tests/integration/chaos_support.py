"""The chaos suite's own servers, fault schedule and end checks (see test_chaos.py).

Everything here that a fault touches is the test's own: a Kafka broker, a MongoDB-compatible
server and an SMTP sink on free ports with their files under the test's tmp dir, plus the
worker and consumers processes. The shared stack is never stopped, paused or restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import json
import os
import random
import signal
import socket
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email import policy
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from cli.soak_run import LagReader
from consumers.ledger import ATTEMPTS_COLLECTION, SENT_COLLECTION
from consumers.loop import ConsumeLoop
from consumers.rewards import COUPONS_COLLECTION
from mail.smtp import message_id
from models.state import CustomerState
from settings import Settings
from stack.consumers import ConsumersProcess
from stack.kafka import KafkaService
from stack.mongo import MongoService
from stack.process import read_pid
from stack.smtp import SmtpService
from stack.worker import START_TIMEOUT, WorkerError
from store.indexes import CUSTOMERS, PARKED
from tests.integration.pipeline_harness import crash, read_to_end, share_kafka_jars
from topics.names import Topics
from workers.app import group_id as worker_group

SEED_VARIABLE = "LOYALTY_CHAOS_SEED"
DEFAULT_SEED = 1313


def chaos_seed() -> int:
    """The seed of this run: ``LOYALTY_CHAOS_SEED`` when set, else a fixed default."""
    return int(os.environ.get(SEED_VARIABLE, DEFAULT_SEED))


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on right now (all bound at once, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# --- the schedule ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """When each fault happens, in seconds after the load starts, and how long it lasts."""

    worker_kills: tuple[tuple[float, float], ...]
    """(kill at, restart after) for each SIGKILL of the worker."""
    consumers_kills: tuple[tuple[float, float], ...]
    kafka_restart: tuple[float, float]
    """(stop at, start again after)."""
    mongo_restart: tuple[float, float]
    """(SIGKILL at, start again after)."""
    smtp_pause: tuple[float, float]
    """(SIGSTOP at, SIGCONT after)."""
    import_at: float
    publish_seconds: float

    @classmethod
    def draw(cls, rng: random.Random, *, window: float, kills: int, smtp_pause_max: float) -> Plan:
        """Draw a schedule: kills spread over the window (one per slice), the rest anywhere."""

        def spread() -> tuple[tuple[float, float], ...]:
            part = window / kills
            return tuple(
                (round(rng.uniform(i * part + 3, (i + 1) * part), 1), round(rng.uniform(0.2, 3), 1))
                for i in range(kills)
            )

        return cls(
            worker_kills=spread(),
            consumers_kills=spread(),
            kafka_restart=(round(rng.uniform(0.25, 0.6) * window, 1), round(rng.uniform(1, 5), 1)),
            mongo_restart=(round(rng.uniform(0.15, 0.85) * window, 1), round(rng.uniform(2, 8), 1)),
            smtp_pause=(
                round(rng.uniform(0.1, 0.8) * window, 1),
                round(rng.uniform(smtp_pause_max / 2, smtp_pause_max), 1),
            ),
            import_at=round(rng.uniform(0.2, 0.7) * window, 1),
            publish_seconds=window * 0.8,
        )

    def describe(self) -> str:
        """One line per fault kind."""
        return "\n".join(
            [
                f"  worker SIGKILL at/restart after: {list(self.worker_kills)}",
                f"  consumers SIGKILL at/restart after: {list(self.consumers_kills)}",
                f"  Kafka restart at/down for: {self.kafka_restart}",
                f"  MongoDB SIGKILL at/down for: {self.mongo_restart}",
                f"  SMTP sink SIGSTOP at/for: {self.smtp_pause}",
                f"  CSV import at: {self.import_at}; load published over {self.publish_seconds} s",
            ]
        )


@dataclass
class Record:
    """What happened: faults done, moments they happened, processes that died on their own."""

    started: float = field(default_factory=time.monotonic)
    counts: Counter[str] = field(default_factory=Counter)
    events: list[str] = field(default_factory=list)
    unexpected_exits: list[str] = field(default_factory=list)

    def note(self, kind: str, what: str) -> None:
        """Count a fault and log it with its time since the start."""
        self.counts[kind] += 1
        line = f"{time.monotonic() - self.started:7.1f} s  {what}"
        self.events.append(line)
        print(f"chaos: {line}", flush=True)

    async def until(self, offset: float) -> None:
        """Wait until ``offset`` seconds after the start (the schedule's clock)."""
        await asyncio.sleep(max(0.0, self.started + offset - time.monotonic()))


# --- own servers ----------------------------------------------------------------------------


@dataclass
class Servers:
    """This test's Kafka broker, MongoDB-compatible server and SMTP sink (never the shared)."""

    settings: Settings
    kafka: KafkaService
    mongo: MongoService
    smtp: SmtpService

    @property
    def smtp_pid(self) -> int | None:
        """The PID of the sink process."""
        return read_pid(self.smtp.pid_file)


@contextlib.contextmanager
def own_servers(settings: Settings, home: Path, namespace: str) -> Iterator[Servers]:
    """Start a broker, a MongoDB-compatible server and an SMTP sink of this test; stop them."""
    kafka_port, controller_port, mongo_port, smtp_port = free_ports(4)
    own = settings.model_copy(
        update={
            "stack_dir": home,
            "kafka_port": kafka_port,
            "kafka_controller_port": controller_port,
            "kafka_bootstrap": f"127.0.0.1:{kafka_port}",
            "mongo_port": mongo_port,
            "smtp_port": smtp_port,
            "mail_dir": home / "mail",
            "topic_namespace": namespace,
        }
    )
    share_kafka_jars(settings, home)
    kafka, mongo, smtp = KafkaService(own), MongoService(own), SmtpService(own)
    try:
        mongo.start()
        smtp.start()
        kafka.start()
        yield Servers(
            own.model_copy(update={"mongo_uri": mongo.uri}),
            kafka,
            mongo,
            smtp,
        )
    finally:
        pid = read_pid(smtp.pid_file)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # a paused sink could not stop
        smtp.stop()
        kafka.stop()
        crash(mongo)


# --- the consumers process ------------------------------------------------------------------


class Consumers(ConsumersProcess):
    """`loyalty consumers --only rewards,notifier` of this test."""

    def __init__(self, settings: Settings, *, log_file: Path, smtp_timeout: float) -> None:
        super().__init__(settings, log_file=log_file, workdir=log_file.parent)
        self.extra_env.update(
            {
                "LOYALTY_SMTP_TIMEOUT": str(smtp_timeout),
                "LOYALTY_SMTP_CONNECTIONS": str(settings.smtp_connections),
                # Outages are waited out with backoff; a short cap keeps the wait after one
                # ends short (the default, 30 s, is for production).
                "LOYALTY_CONSUMER_RETRY_BASE": "0.2",
                "LOYALTY_CONSUMER_RETRY_MAX": "2",
                "LOYALTY_LOG_JSON": "true",
            }
        )
        self.name = "consumers"

    def describe(self) -> str:
        """The end of the log, headed by the process name."""
        return f"--- consumers ({self.log_file}) ---\n{self.tail(40)}"

    async def ready(self, within: float = START_TIMEOUT) -> None:
        """Wait until /health says ready; fail the test if the process dies or hangs."""
        try:
            await self.wait_ready(within)
        except WorkerError as exc:
            pytest.fail(f"consumers: {exc}")

    def resent(self) -> set[str]:
        """Notification ids the notifier announced it sends again (its send was unconfirmed)."""
        text = self.log_file.read_text(errors="replace")
        found = set()
        for line in text.splitlines():
            if "resending_unconfirmed_email" in line:
                with contextlib.suppress(ValueError):
                    found.add(_json_field(line, "notification_id"))
        return found


def _json_field(line: str, name: str) -> str:
    return str(json.loads(line[line.index("{") :])[name])


# --- reading what the services did ----------------------------------------------------------


async def read_topic(settings: Settings, topic: str) -> list[dict[str, Any]]:
    """Return every message on one namespaced topic, up to its end offsets when called."""
    return await read_to_end(settings, topic)


@dataclass(frozen=True)
class Mail:
    """One email the sink received."""

    message_id: str
    to: str


def received_mail(mail_dir: Path) -> list[Mail]:
    """Every message in the sink's folder."""
    found = []
    for path in sorted(mail_dir.glob("*.eml")):
        parsed = email.message_from_bytes(path.read_bytes(), policy=policy.compat32)
        found.append(Mail(str(parsed["Message-ID"]), str(parsed["X-Envelope-To"])))
    return found


@dataclass
class MailCheck:
    """Expected emails against the sink: missing, unexpected, duplicated."""

    missing: list[str]
    unexpected: list[str]
    duplicated: dict[str, int]
    """Message-ID -> copies received, for those received more than once."""
    wrong_recipient: list[str]
    received: int
    optional_received: int


def check_mail(
    notifications: dict[str, str],
    required: set[str],
    sender: str,
    received: Sequence[Mail],
) -> MailCheck:
    """Compare the sink's emails with the oracle's notifications.

    ``notifications``: id -> customer id of every notification the rules emit; ``required``:
    those whose email must arrive (the customer is active at the end; a removed customer's may
    or may not go out, depending on whether the notifier saw the removal first).
    """
    by_header = {message_id(nid, sender): nid for nid in notifications}
    copies = Counter(m.message_id for m in received)
    missing = sorted(nid for nid in required if copies[message_id(nid, sender)] == 0)
    unexpected = sorted(h for h in copies if h not in by_header)
    wrong = sorted(
        f"{by_header[m.message_id]} to {m.to}"
        for m in received
        if m.message_id in by_header
        and m.to != f"{notifications[by_header[m.message_id]]}@example.test"
    )
    optional = sum(1 for h in copies if h in by_header and by_header[h] not in required)
    return MailCheck(
        missing=missing,
        unexpected=unexpected,
        duplicated={by_header.get(h, h): n for h, n in copies.items() if n > 1},
        wrong_recipient=wrong,
        received=len(received),
        optional_received=optional,
    )


def expected_coupons(states: dict[str, CustomerState]) -> dict[str, tuple[str, str, str]]:
    """grant id -> (code, status, customer id) of every grant in the oracle's states."""
    return {
        grant.grant_id: (grant.code, grant.status, customer_id)
        for customer_id, state in states.items()
        for grant in state.rewards
    }


async def coupon_problems(
    settings: Settings, expected: dict[str, tuple[str, str, str]]
) -> list[str]:
    """Describe every coupon that differs from the oracle's grants (missing, extra, wrong)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_uri)
    try:
        stored = {
            doc["_id"]: (doc.get("code"), doc.get("status"), doc.get("customer_id"))
            async for doc in client[settings.mongo_database][COUPONS_COLLECTION].find(
                {}, {"code": 1, "status": 1, "customer_id": 1}
            )
        }
    finally:
        await client.close()
    problems = [
        f"coupon {g}: missing, expected {v}" for g, v in expected.items() if g not in stored
    ]
    problems += [
        f"coupon {g}: not granted, stored {v}" for g, v in stored.items() if g not in expected
    ]
    problems += [
        f"coupon {g}: stored {stored[g]}, expected {v}"
        for g, v in expected.items()
        if g in stored and stored[g] != v
    ]
    return sorted(problems)


async def leftovers(settings: Settings) -> dict[str, int]:
    """What is still waiting: outbox entries, parked messages, unconfirmed email attempts."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_uri)
    try:
        db = client[settings.mongo_database]
        outbox = 0
        async for doc in db[CUSTOMERS].find({"outbox.0": {"$exists": True}}, {"outbox": 1}):
            outbox += len(doc.get("outbox", ()))
        parked = await db[PARKED].count_documents({})
        attempts = {doc["_id"] async for doc in db[ATTEMPTS_COLLECTION].find({}, {"_id": 1})}
        sent = {doc["_id"] async for doc in db[SENT_COLLECTION].find({}, {"_id": 1})}
    finally:
        await client.close()
    return {
        "worker outbox entries": outbox,
        "parked messages": parked,
        "email attempts without a sent record": len(attempts - sent),
    }


async def group_lags(settings: Settings) -> dict[str, int]:
    """Records not yet committed by each consumer group of the pipeline (0: all consumed)."""
    topics = Topics(settings.topic_namespace)
    groups = {
        group: (group, group_topics)
        for group, group_topics in (
            (worker_group(topics), topics.inputs),
            (ConsumeLoop.group_id(topics, "rewards"), (topics.rewards,)),
            (ConsumeLoop.group_id(topics, "notifier"), (topics.notifications,)),
        )
    }
    reader = LagReader(settings, groups)
    try:
        await reader.start()
        return await reader.lag()
    finally:
        await reader.stop()
