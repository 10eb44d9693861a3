"""Helpers of the admin tooling tests: an isolated program (database + topics), the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from models.state import CustomerState
from settings import Settings
from store.mongo import open_repository
from store.repository import CustomerWrite
from tests.integration.pipeline_harness import topic_partitions
from tests.integration.worker_kit import WorkerUnderTest
from topics import names

LOYALTY = str(Path(sys.executable).with_name("loyalty"))


@dataclass(frozen=True)
class Isolated:
    """A database and a topic namespace of one test; ``settings`` points at both."""

    settings: Settings
    env: dict[str, str]

    def cli(self, *args: str, check: int | None = 0) -> subprocess.CompletedProcess[str]:
        """Run ``loyalty ARGS`` against this test's database and topics."""
        done = subprocess.run(
            [LOYALTY, *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=False,
            timeout=180,
        )
        if check is not None:
            assert done.returncode == check, (done.returncode, done.stdout, done.stderr)
        return done

    def cli_json(self, *args: str) -> Any:
        """Run a command that prints JSON on stdout and return it parsed."""
        return json.loads(self.cli(*args).stdout)


def isolated(settings: Settings, unique: str) -> Isolated:
    """Return settings and environment for a database and namespace unique to ``unique``."""
    env = {
        "LOYALTY_MONGO_DATABASE": f"test_admin_{unique}",
        "LOYALTY_TOPIC_NAMESPACE": f"t-{unique}-",
        "LOYALTY_STACK_DIR": str(settings.stack_dir),
    }
    changed = settings.model_copy(
        update={
            "mongo_database": env["LOYALTY_MONGO_DATABASE"],
            "topic_namespace": env["LOYALTY_TOPIC_NAMESPACE"],
        }
    )
    return Isolated(changed, env)


async def seed_customers(settings: Settings, emails: Iterable[str], prefix: str) -> dict[str, str]:
    """Create customers straight in the store; return {email: customer_id}."""
    repo = await open_repository(settings)
    try:
        ids = {email: f"{prefix}-{email.split('@')[0]}" for email in emails}
        now = datetime.now(UTC)
        writes = [
            CustomerWrite(
                state=CustomerState(
                    customer_id=cid,
                    email=email,
                    email_normalized=email.strip().casefold(),
                    joined_at=now,
                ),
                loaded=None,
            )
            for email, cid in ids.items()
        ]
        result = await repo.save_batch(writes)
        assert result.saved == frozenset(ids.values()), result
        return ids
    finally:
        await repo.close()


async def read_topic(
    settings: Settings, topic: str, count: int, within: float = 30
) -> list[dict[str, Any]]:
    """Read ``count`` messages from the start of a topic (fails after ``within`` seconds)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(settings, [topic])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: list[dict[str, Any]] = []
        deadline = datetime.now(UTC).timestamp() + within
        while len(found) < count and datetime.now(UTC).timestamp() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                found.extend(json.loads(r.value) for r in records if r.value is not None)
        # A short extra poll proves nothing more than expected arrived.
        for records in (await consumer.getmany(timeout_ms=500)).values():
            found.extend(json.loads(r.value) for r in records if r.value is not None)
        return found
    finally:
        await consumer.stop()


@asynccontextmanager
async def running_worker(stack: Settings, workdir: Path) -> AsyncIterator[WorkerUnderTest]:
    """A `loyalty worker` on its own topics and database; it must exit cleanly when stopped."""
    under_test = WorkerUnderTest(stack, uuid.uuid4().hex[:10], workdir)
    await under_test.start()
    yield under_test
    try:
        assert await under_test.stop() == 0, under_test.log()
    finally:
        await under_test.close()


def cli(
    worker: WorkerUnderTest, *args: str, check: int | None = 0
) -> subprocess.CompletedProcess[str]:
    """Run ``loyalty ARGS`` against the worker's topics and database."""
    done = subprocess.run(
        [LOYALTY, *args], env=worker.env, capture_output=True, text=True, check=False, timeout=180
    )
    if check is not None:
        assert done.returncode == check, (done.returncode, done.stdout, done.stderr)
    return done


async def join(worker: WorkerUnderTest, unique: str, *names_: str) -> dict[str, str]:
    """Create customers through the worker; return {name: customer_id}."""
    ids = {name: f"{name}-{unique}" for name in names_}
    at = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    for name, cid in ids.items():
        data = {"email": f"{name}.{unique}@example.com", "first_name": name.title()}
        body = {
            "id": f"up-{cid}",
            "type": "customer.upserted",
            "customer_id": cid,
            "occurred_at": at,
            "data": data,
        }
        await worker.send(names.CUSTOMERS, body, cid)
    for cid in ids.values():
        await worker.wait_customer(cid, lambda c: c["status"] == "active", f"{cid} created")
    return ids


async def status(worker: WorkerUnderTest, batch_id: str) -> dict[str, Any]:
    """``loyalty import status BATCH --json`` against the worker's store."""
    return json.loads(cli(worker, "import", "status", batch_id, "--json").stdout)  # type: ignore[no-any-return]
