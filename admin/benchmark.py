"""``loyalty bench import``: a large tiers import timed per stage against raw ceilings.

One run: seed customers straight into a fresh store database, generate a tiers CSV of their
emails and unknown ones, run the real ``loyalty import tiers`` in a child process (its peak RSS
is the import's own), then measure in this process what each stage could do at best on the
same data: the csv module reading the file, the store answering the same lookups in the same
batch shape and concurrency, and aiokafka producing the same messages with the same settings.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from admin.connections import IMPORT_PRODUCER
from admin.imports import ImportOptions
from bootstrap import kafka_producer, mongo_client
from models.state import CustomerState
from settings import Settings
from store import documents as docs
from store.hot import plan_write
from store.mongo import open_repository
from store.repository import CustomerWrite
from topics.admin import ensure_namespace_topics
from topics.names import Topics

TIERS = ("Bronze", "Silver", "Gold", "Platinum")
SEED_CHUNK = 5000
Say = Callable[[str], None]


@dataclass(frozen=True)
class BenchPlan:
    """The generated data: how many rows of each sort, in a fixed random order."""

    rows: int = 1_000_000
    customers: int = 100_000
    unknown: int = 200_000
    """Rows with an email no customer has (each a different email)."""
    invalid: int = 10_000
    """Rows with a tier the program does not define."""
    sample: int = 100_000
    """Lookups and messages the raw ceilings are measured on."""
    seed: int = 7

    @property
    def repeats(self) -> int:
        """Rows repeating an email an earlier row named (reported as duplicates)."""
        return self.rows - self.customers - self.unknown - self.invalid


@dataclass
class StageRate:
    """One stage: items per second in the import and in its raw ceiling."""

    name: str
    items: int
    seconds: float
    ceiling_items: int
    ceiling_seconds: float

    @property
    def rate(self) -> float:
        """Items per second of the stage's busy time in the import."""
        return self.items / self.seconds if self.seconds else 0.0

    @property
    def ceiling(self) -> float:
        """Items per second of the raw ceiling."""
        return self.ceiling_items / self.ceiling_seconds if self.ceiling_seconds else 0.0

    @property
    def ratio(self) -> float:
        """The stage's rate as a share of its ceiling."""
        return self.rate / self.ceiling if self.ceiling else 0.0


@dataclass
class BenchResult:
    """Everything ``loyalty bench import`` prints."""

    plan: BenchPlan
    file_bytes: int
    seed_seconds: float
    report: dict[str, Any]
    wall_seconds: float
    peak_rss_mb: float
    stages: list[StageRate] = field(default_factory=list)


def email_of(i: int) -> str:
    """Return the email of seeded customer ``i``."""
    return f"member{i:07d}@bench.example"


def generate_rows(plan: BenchPlan) -> Iterator[tuple[str, str]]:
    """Yield (email, tier) rows: every customer once, unknown emails, bad tiers, repeats."""
    rng = random.Random(plan.seed)  # noqa: S311 - reproducible test data, not secrets
    kinds = ["known"] * plan.customers + ["unknown"] * plan.unknown
    kinds += ["invalid"] * plan.invalid + ["repeat"] * plan.repeats
    rng.shuffle(kinds)
    known = unknown = 0
    for kind in kinds:
        if kind == "known":
            email, known = email_of(known).upper() if known % 5 == 0 else email_of(known), known + 1
            yield email, rng.choice(TIERS)
        elif kind == "unknown":
            yield f"stranger{unknown:07d}@elsewhere.example", rng.choice(TIERS)
            unknown += 1
        elif kind == "invalid":
            yield f"typo{rng.randrange(10**9)}@bench.example", "Platnum"
        else:
            yield email_of(rng.randrange(max(known, 1))), rng.choice(TIERS).lower()


def write_csv(path: Path, plan: BenchPlan) -> int:
    """Write the generated tiers CSV; return its size in bytes."""
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(("email", "tier"))
        writer.writerows(generate_rows(plan))
    return path.stat().st_size


def raw_csv_read(path: Path) -> tuple[int, float]:
    """Return (rows, CPU seconds) for the csv module reading the file and nothing else."""
    started = time.thread_time()  # CPU time, like the import's parse stage
    with path.open(encoding="utf-8", newline="") as handle:
        rows = sum(1 for _ in csv.reader(handle)) - 1
    return rows, time.thread_time() - started


def run_import_child(
    path: Path, batch_id: str, env: dict[str, str]
) -> tuple[dict[str, Any], float, float]:
    """Run ``loyalty import tiers`` in a child process; return its report, wall s, peak MB."""
    command = [
        str(Path(sys.executable).with_name("loyalty")),
        "import",
        "tiers",
        str(path),
        "--batch-id",
        batch_id,
        "--json",
    ]
    started = time.perf_counter()
    done = subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"the import failed ({done.returncode}): {done.stderr[-2000:]}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return json.loads(done.stdout), wall, peak_kb / 1024


async def raw_lookups(
    directory: Any, keys: list[str], batch: int, in_flight: int
) -> tuple[int, float]:
    """Return (emails, seconds) for the store answering these lookups in the import's shape."""
    batches = [keys[i : i + batch] for i in range(0, len(keys), batch)]
    gate = asyncio.Semaphore(in_flight)

    async def one(chunk: list[str]) -> None:
        async with gate:
            await directory.email_owners(chunk)

    started = time.perf_counter()
    await asyncio.gather(*(one(chunk) for chunk in batches))
    return len(keys), time.perf_counter() - started


async def raw_produce(
    settings: Settings, topic: str, messages: list[tuple[bytes, bytes]]
) -> tuple[int, float]:
    """Return (messages, seconds) for aiokafka producing these with the import's settings."""
    producer = kafka_producer(settings, **IMPORT_PRODUCER)
    await producer.start()
    try:
        await producer.partitions_for(topic)
        started = time.perf_counter()
        futures = [await producer.send(topic, value, key=key) for key, value in messages]
        await producer.flush()
        await asyncio.gather(*futures)
        return len(messages), time.perf_counter() - started
    finally:
        await producer.stop()


def sample_messages(plan: BenchPlan, batch_id: str, topic: str) -> list[tuple[bytes, bytes]]:
    """Return messages shaped like the import's, for the raw producer."""
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    messages = []
    for i in range(min(plan.sample, plan.customers)):
        customer_id = f"bench-{i:07d}"
        envelope = {
            "id": f"{batch_id}:{i + 2}",
            "type": "tier.change",
            "customer_id": customer_id,
            "occurred_at": at,
            "source": "import",
            "batch": {"id": batch_id, "row": i + 2, "suppress_notifications": True},
            "data": {"tier": TIERS[i % 4], "notify": False, "entry_rewards": False},
        }
        value = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
        messages.append((customer_id.encode(), value))
    del topic
    return messages


def new_run_id() -> str:
    """Return a short id naming this run's database, topics and batch."""
    return uuid.uuid4().hex[:8]


async def prepare_topics(settings: Settings, topics: Topics) -> None:
    """Create this run's namespaced topics."""
    await ensure_namespace_topics(
        settings.kafka_bootstrap,
        settings.topic_partitions,
        topics.namespace,
    )


async def delete_topics(settings: Settings, topics: Topics) -> None:
    """Delete this run's namespaced topics."""
    from aiokafka.admin import AIOKafkaAdminClient  # noqa: PLC0415 - only at the end

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(list(topics.all))
    finally:
        await admin.close()


async def delete_namespace(settings: Settings, namespace: str) -> None:
    """Delete every topic of the namespace, faust's internal ones included."""
    from aiokafka.admin import AIOKafkaAdminClient  # noqa: PLC0415 - only at the end

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = await admin.list_topics()
        await admin.delete_topics([t for t in existing if t.startswith(namespace)])
    finally:
        await admin.close()


async def drop_database(settings: Settings, name: str) -> None:
    """Drop this run's database."""
    client = mongo_client(settings)
    try:
        await client.drop_database(name)
    finally:
        await client.close()


def seed_document(state: CustomerState) -> dict[str, Any]:
    """Return a new customer's document as the store's first save writes it.

    Only the customers collection: the lookup collection (listings, the scheduler, groups) is
    not read by an import, so the seed leaves it out.
    """
    plan = plan_write(CustomerWrite(state=state, loaded=None), hot_orders=1)
    fields = docs.customer_fields(plan, {}, [])
    return {"_id": state.customer_id, "version": 1, **fields, "outbox": []}


async def seed_customers(settings: Settings, count: int, say: Say) -> float:
    """Insert ``count`` customers with ``insert_many``; return the seconds it took."""
    repository = await open_repository(settings)  # creates the indexes first
    joined = datetime(2025, 1, 1, tzinfo=UTC)
    started = time.perf_counter()
    try:
        collection = repository.customers
        for start in range(0, count, SEED_CHUNK):
            states = [
                CustomerState(
                    customer_id=f"bench-{i:07d}",
                    email=email_of(i),
                    email_normalized=email_of(i),
                    joined_at=joined,
                )
                for i in range(start, min(start + SEED_CHUNK, count))
            ]
            await collection.insert_many([seed_document(s) for s in states], ordered=False)
            if (start // SEED_CHUNK) % 10 == 0:
                say(f"  seeded {start + len(states)} customers")
    finally:
        await repository.close()
    return time.perf_counter() - started


def lookup_keys(plan: BenchPlan) -> list[str]:
    """Return the first ``sample`` emails the import looks up, normalised, in file order."""
    seen: set[str] = set()
    keys: list[str] = []
    for email, tier in generate_rows(plan):
        key = email.casefold()
        if key in seen or tier == "Platnum":  # repeats and bad tiers are never looked up
            continue
        seen.add(key)
        keys.append(key)
        if len(keys) >= plan.sample:
            break
    return keys


async def run_bench(settings: Settings, plan: BenchPlan, workdir: Path, say: Say) -> BenchResult:
    """Seed, generate, import in a child process, measure the ceilings; clean up after."""
    run = new_run_id()
    topics = Topics(f"bench-{run}-")
    database = f"bench_import_{run}"
    local = settings.model_copy(
        update={"mongo_database": database, "topic_namespace": topics.namespace}
    )
    path = workdir / f"bench-import-{run}.csv"
    batch_id = f"bench-{run}"
    options = ImportOptions("tiers", path, TIERS)
    try:
        say(f"seeding {plan.customers} customers into database {database} (insert_many)")
        seed_seconds = await seed_customers(local, plan.customers, say)
        say(f"  {plan.customers / seed_seconds:.0f} customers/s")
        file_bytes = write_csv(path, plan)
        say(f"generated {path.name}: {plan.rows} rows, {file_bytes / 1e6:.1f} MB")
        raw_rows, raw_seconds = raw_csv_read(path)
        say(f"csv module alone: {raw_rows / raw_seconds:.0f} rows/s")
        await prepare_topics(local, topics)
        say("importing with `loyalty import tiers` in a child process")
        env = {
            "LOYALTY_MONGO_DATABASE": database,
            "LOYALTY_TOPIC_NAMESPACE": topics.namespace,
            "LOYALTY_PROGRAM_FILE": str(settings.program_file.resolve()),
        }
        report, wall, peak = await asyncio.to_thread(run_import_child, path, batch_id, env)
        say(f"  {plan.rows / wall:.0f} rows/s end to end, peak RSS {peak:.0f} MB")
        repository = await open_repository(local)
        try:
            say("raw ceilings on the same data: store lookups, then the producer")
            keys = lookup_keys(plan)
            lookups = await raw_lookups(
                repository, keys, options.lookup_batch, options.lookups_in_flight
            )
        finally:
            await repository.close()
        produced = await raw_produce(
            local, topics.tier_commands, sample_messages(plan, batch_id, topics.tier_commands)
        )
    finally:
        await _clean(local, topics, database, path)
    seconds = report["seconds"]
    stages = [
        StageRate("parse + validate", report["rows"], seconds["parse"], raw_rows, raw_seconds),
        StageRate("email lookup", report["looked_up"], seconds["lookup"], *lookups),
        StageRate("publish", report["published"], seconds["publish"], *produced),
    ]
    return BenchResult(plan, file_bytes, seed_seconds, report, wall, peak, stages)


async def _clean(settings: Settings, topics: Topics, database: str, path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".rejected.csv")):
        leftover.unlink(missing_ok=True)
    await drop_database(settings, database)
    await delete_topics(settings, topics)
