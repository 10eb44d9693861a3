"""Bad input at volume: 10,000 generated malformed messages among valid ones, one real worker.

The messages come from tests/hostile_messages.py (derandomized Hypothesis strategies); each
knows its fate from how it was built. After the run, exactly: every malformed message is on
the dead-letter topic at its topic/partition/offset with its code; every valid message the
rules refuse is on its customer's activity with its code (or dead-lettered with it when there
is no customer); every other valid message is applied (activity entry, stored profile and
spend); and the worker that started is the one that stops, with no traceback in its log.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from bootstrap import mongo_client
from settings import Settings
from tests.hostile_messages import (
    Hostile,
    Population,
    applied,
    encode,
    envelope,
    extremes,
    generate,
    refused,
    tier_command,
)
from tests.hostile_mutations import malformed
from tests.integration.waiting import eventually
from tests.integration.worker_kit import WorkerUnderTest
from topics import names

pytestmark = pytest.mark.integration

MALFORMED = 10_000
APPLIED = 1_500
REFUSED = 500
CUSTOMERS = 200
PHANTOMS = 20
Place = tuple[str, int, int]


@pytest.fixture(scope="module")
async def worker(
    stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WorkerUnderTest]:
    workdir: Path = tmp_path_factory.mktemp("hostile-volume")
    under_test = WorkerUnderTest(stack, uuid.uuid4().hex[:10], workdir)
    await under_test.start()
    pid = under_test.process.process.pid if under_test.process.process else None
    yield under_test
    try:
        process = under_test.process.process
        assert process is not None
        assert process.pid == pid
        assert process.poll() is None, "the worker died:\n" + under_test.log()
        assert await under_test.stop() == 0, under_test.log()
        log = under_test.process.log_file.read_text(errors="replace")
        assert "Traceback" not in log, under_test.log()
    finally:
        await under_test.close()


async def test_ten_thousand_malformed_messages_among_valid_ones(
    worker: WorkerUnderTest, stack: Settings
) -> None:
    started = time.perf_counter()
    tag = worker.database[-6:]
    now = datetime.now(UTC).replace(microsecond=0)
    people = Population(
        [f"hv{tag}-{n:04d}" for n in range(CUSTOMERS)],
        [f"hv{tag}-ghost-{n:04d}" for n in range(PHANTOMS)],
        now,
    )
    await _seed(worker, stack, people)

    messages = [
        *generate(MALFORMED, lambda n: malformed(people, f"m{tag}{n:06d}")),
        *generate(APPLIED, lambda n: applied(people, f"a{tag}{n:06d}")),
        *generate(REFUSED, lambda n: refused(people, f"r{tag}{n:06d}")),
        *generate(
            CUSTOMERS // 2,
            lambda n: tier_command(people, people.existing[n], f"t{tag}{n:06d}"),
            per_example=10,
        ),
        *extremes(people),
    ]
    random.Random(13).shuffle(messages)  # malformed ones spread between the valid ones
    generated = time.perf_counter()
    places = await _publish(worker, messages)
    published = time.perf_counter()

    expected_letters = {p: m for p, m in zip(places, messages, strict=True) if m.dead_lettered}
    letters = await _dead_letters(worker, set(expected_letters))
    for place, message in expected_letters.items():
        letter = letters[place]
        assert letter["error_code"] == message.code, (message.label, letter)
        assert letter["error_message"], letter
        assert (letter["topic"], letter["partition"], letter["offset"]) == place
    assert len(letters) == len(expected_letters)  # nothing valid was dead-lettered

    on_activity = {m.id: m for m in messages if not m.dead_lettered}
    activity = await _activity(worker, stack, set(on_activity))
    for mid, message in on_activity.items():
        kinds = activity[mid]
        if message.expect == "refused":
            assert kinds == {("rejected", message.code)}, (message.label, kinds)
        else:
            assert kinds, message.label
            assert all(kind != "rejected" for kind, _ in kinds), (message.label, kinds)
    await _check_state(worker, messages)
    done = time.perf_counter()

    tally = Counter((m.expect, m.code) for m in messages)
    print(
        f"\nhostile volume: {len(messages)} messages "
        f"({sum(m.expect == 'malformed' for m in messages)} malformed, "
        f"{sum(m.expect == 'refused' for m in messages)} refused, "
        f"{sum(m.expect == 'applied' for m in messages)} applied; "
        f"{len(expected_letters)} dead-lettered): {dict(sorted(tally.items(), key=str))}\n"
        f"generate {generated - started:.1f} s, publish {published - generated:.1f} s, "
        f"worker to done {done - published:.1f} s"
    )
    status, _ = await worker.get("/health")
    assert status == 200


async def _seed(worker: WorkerUnderTest, stack: Settings, people: Population) -> None:
    """Create every customer of ``people.existing`` and wait until the store holds them."""
    joined = people.now - timedelta(days=8)  # before every message the strategies date
    for n, cid in enumerate(people.existing):
        data = {"email": people.email(cid), "first_name": "seed"}
        value = envelope("customer.upserted", cid, f"seed-{cid}-{n}", joined, data)
        await worker.producer.send(
            worker.topics.name(names.CUSTOMERS), encode(value), key=cid.encode()
        )
    await worker.producer.flush()
    client = mongo_client(stack)
    try:
        customers = client[worker.database]["customers"]

        async def all_created() -> bool:
            return await customers.count_documents({}) == len(people.existing)

        await eventually(all_created, within=120, what="every seeded customer", detail=worker.log)
    finally:
        await client.close()


async def _publish(worker: WorkerUnderTest, messages: list[Hostile]) -> list[Place]:
    """Publish in order (without waiting message by message); return where each one landed."""
    futures = []
    for message in messages:
        topic = worker.topics.name(message.topic)
        futures.append(await worker.producer.send(topic, message.value, key=message.key.encode()))
    metadata = await asyncio.gather(*futures)
    return [(m.topic, m.partition, m.offset) for m in metadata]


async def _dead_letters(worker: WorkerUnderTest, expected: set[Place]) -> dict[Place, Any]:
    """Read the dead-letter topic until every expected place is there; return them by place."""
    found: dict[Place, Any] = {}
    consumer = AIOKafkaConsumer(
        worker.topics.name(names.DEAD_LETTER),
        bootstrap_servers=worker.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_bytes=16 * 1024 * 1024,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()

    def keep(batch: dict[Any, list[Any]]) -> None:
        for records in batch.values():
            for record in records:
                letter = json.loads(record.value)
                found[(letter["topic"], letter["partition"], letter["offset"])] = letter

    try:

        async def all_there() -> bool:
            keep(await consumer.getmany(timeout_ms=500, max_records=5000))
            return expected <= set(found)

        await eventually(
            all_there,
            within=300,
            what="a dead letter for every malformed message",
            interval=0.5,
            detail=lambda: f"{len(expected - set(found))} missing\n{worker.log()}",
        )
        while batch := await consumer.getmany(timeout_ms=1000):
            keep(batch)
    finally:
        await consumer.stop()
    return found


async def _activity(
    worker: WorkerUnderTest, stack: Settings, ids: set[str | None]
) -> dict[str | None, set[tuple[str, str | None]]]:
    """Wait until the activity log holds an entry caused by each id; return (kind, code)s."""
    client = mongo_client(stack)
    found: dict[str | None, set[tuple[str, str | None]]] = defaultdict(set)
    try:
        activity = client[worker.database]["activity"]

        async def all_there() -> bool:
            found.clear()
            cursor = activity.find({}, {"kind": 1, "entry.cause": 1, "entry.details.code": 1})
            async for doc in cursor:
                entry = doc["entry"]
                found[entry["cause"]["id"]].add((doc["kind"], entry["details"].get("code")))
            return ids <= set(found)

        await eventually(
            all_there,
            within=300,
            what="an activity entry for every valid message",
            interval=1.0,
            detail=lambda: f"{len(ids - set(found))} missing\n{worker.log()}",
        )
    finally:
        await client.close()
    return found


async def _check_state(worker: WorkerUnderTest, messages: list[Hostile]) -> None:
    """Each customer shows its last applied profile, verbatim, and the spend of its orders."""
    profiles: dict[str, dict[str, Any]] = {}
    spend: dict[str, Decimal] = defaultdict(Decimal)
    for message in messages:
        if message.expect != "applied" or message.customer_id is None or message.data is None:
            continue
        if message.label == "customer.upserted":
            profiles[message.customer_id] = message.data
        elif message.label == "order.paid":
            spend[message.customer_id] += Decimal(message.data["total"])
    for cid in sorted(set(profiles) | set(spend)):
        view = await worker.customer(cid)
        assert view is not None, cid
        if cid in profiles:
            expected = profiles[cid]
            assert (view["first_name"], view["last_name"]) == (
                expected["first_name"],
                expected["last_name"],
            ), cid
        assert Decimal(view["lifetime_spend"]) == spend.get(cid, Decimal(0)), cid
