"""Drive the real pipeline from a test: topics, load, worker processes, outputs, final states.

Everything a test starts here is its own: a topic namespace, a database, web ports, worker
processes (stopped by PID) and, when a test must stop MongoDB, a separate MongoDB-compatible
server in a temp dir. Nothing here touches the shared stack's processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from pymongo import AsyncMongoClient

from admin.benchmark import delete_namespace
from bootstrap import kafka_consumer, kafka_producer
from models.state import CustomerState
from settings import Settings
from stack.kafka import KafkaService
from stack.mongo import MongoService
from stack.process import port_open, read_pid, wait_for
from stack.worker import START_TIMEOUT, WorkerError, WorkerProcess
from store.mongo import open_repository
from store.repository import LoadRequest
from tests.integration.pipeline_oracle import CODE_KEY, Load, Published, comparable
from tests.integration.waiting import eventually
from topics import names
from topics.admin import ensure_topics


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def topic(namespace: str, name: str) -> str:
    """Return the namespaced name of a contract topic."""
    return f"{namespace}{name}"


@dataclass(frozen=True)
class Pipeline:
    """One test's isolated world: the settings of its namespace, database and code key."""

    settings: Settings

    @classmethod
    def isolated(cls, settings: Settings, unique: str, **overrides: Any) -> Pipeline:
        """Return a pipeline with its own topic namespace and database."""
        return cls(
            settings.model_copy(
                update={
                    "topic_namespace": f"ft{unique}.",
                    "mongo_database": f"ft_{unique}",
                    "reward_code_key": SecretStr(CODE_KEY),
                    "program_file": settings.program_file.resolve(),
                    **overrides,
                }
            )
        )

    @property
    def namespace(self) -> str:
        """The prefix of this pipeline's topics."""
        return self.settings.topic_namespace

    @property
    def database(self) -> str:
        """The MongoDB database of this pipeline."""
        return self.settings.mongo_database

    def worker(self, workdir: Path, name: str = "worker") -> Worker:
        """Return a worker process of this pipeline on its own web port (not started)."""
        settings = self.settings.model_copy(update={"web_port": free_port()})
        return Worker(settings, log_file=workdir / f"{name}.log", workdir=workdir, name=name)

    async def worker_group_settled(self, members: int, within: float = 90.0) -> None:
        """Wait until the workers' consumer group is stable with ``members`` assigned members."""
        group = f"{self.namespace}loyalty-worker"
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap)
        await admin.start()
        seen: list[str] = []

        async def settled() -> bool:
            response = (await admin.describe_consumer_groups([group]))[0].to_object()
            found = response["groups"][0]
            assigned = [m for m in found["members"] if m["member_assignment"]]
            seen[:] = [f"state {found['state']}, {len(assigned)} assigned members"]
            return found["state"] == "Stable" and len(assigned) == members

        try:
            await eventually(
                settled,
                within=within,
                what=f"group {group} stable with {members} members",
                detail=lambda: "; ".join(seen),
            )
        finally:
            await admin.close()

    async def create_topics(self) -> None:
        """Create the namespace's input and output topics before anything is produced."""
        await ensure_topics(
            self.settings.kafka_bootstrap,
            self.settings.topic_partitions,
            topics=[topic(self.namespace, t) for t in names.ALL_TOPICS],
            same_count=[topic(self.namespace, t) for t in names.INPUT_TOPICS],
        )

    async def publish(self, items: Sequence[Published]) -> None:
        """Publish items in order to the namespace's input topics, keyed by customer id."""
        producer = kafka_producer(self.settings, linger_ms=5)
        await producer.start()
        try:
            sent = [
                await producer.send(topic(self.namespace, item.topic), item.value, key=item.key)
                for item in items
            ]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()

    async def clean_up(self) -> None:
        """Drop this pipeline's database and delete its topics (after a passing test)."""
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.settings.mongo_uri)
        try:
            await client.drop_database(self.database)
        finally:
            await client.close()
        await delete_namespace(self.settings, self.namespace)

    async def read_states(self, customer_ids: Iterable[str]) -> dict[str, CustomerState]:
        """Load the stored state of these customers (absent ones are missing from the result)."""
        repository = await open_repository(self.settings)
        try:
            loaded = await repository.load_many([LoadRequest(c) for c in customer_ids])
            return {customer_id: stored.state for customer_id, stored in loaded.items()}
        finally:
            await repository.close()


class Worker(WorkerProcess):
    """A worker process of a test, with a name for its failure messages."""

    def __init__(self, settings: Settings, *, log_file: Path, workdir: Path, name: str) -> None:
        # faust reads its broker settings from these variables. A killed worker's partitions
        # move only when its session times out: 10 s instead of faust's 60 s keeps each restart
        # short (the broker's request timeout, 90 s, must stay above it).
        faust_env = {"BROKER_SESSION_TIMEOUT": "10", "BROKER_HEARTBEAT_INTERVAL": "1"}
        super().__init__(settings, log_file=log_file, workdir=workdir, extra_env=faust_env)
        self.name = name

    def describe(self) -> str:
        """The end of the log, headed by the worker's name."""
        return f"--- {self.name} ({self.log_file}) ---\n{self.tail(40)}"

    def events(self) -> float:
        """How many input records this process has handled (its /metrics counter)."""
        url = f"{self.url}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "loyalty_events"
            for sample in family.samples
            if sample.name.endswith("_total")
        )

    async def ready(self, within: float = START_TIMEOUT) -> None:
        """Wait until /health says ready; fail the test if the process dies or hangs."""
        try:
            await self.wait_ready(within)
        except WorkerError as exc:
            pytest.fail(f"{self.name}: {exc}")

    async def unready(self, within: float = 60.0) -> None:
        """Wait until /health no longer says ready (a dependency is down)."""

        async def down() -> bool:
            return await asyncio.to_thread(self.health) != 200

        await eventually(
            down, within=within, what=f"{self.name} /health to turn false", detail=self.describe
        )


@contextlib.contextmanager
def workers_stopped(*workers: Worker) -> Iterator[None]:
    """Stop every started worker when the block ends, however it ends."""
    try:
        yield
    finally:
        for worker in workers:
            worker.stop(within=30.0)


def share_kafka_jars(settings: Settings, stack_dir: Path) -> None:
    """Point a stack dir of a test's own at the Kafka jars the shared stack downloaded (read
    only), so its broker starts without going to Maven."""
    installed = KafkaService(settings)
    if installed.installed():
        target = stack_dir / "kafka" / settings.kafka_version
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(installed.install_dir.resolve(), target_is_directory=True)


@contextlib.contextmanager
def own_mongo(settings: Settings, home: Path) -> Iterator[MongoService]:
    """Run a separate MongoDB-compatible server on a free port with its files under `home`."""
    own = settings.model_copy(update={"stack_dir": home, "mongo_port": free_port()})
    service = MongoService(own)
    service.start()
    try:
        yield service
    finally:
        crash(service)


def crash(service: MongoService) -> None:
    """SIGKILL a server this test started and wait until it is gone (an outage, not a stop)."""
    pid = read_pid(service.pid_file)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)

        def gone() -> bool:
            return read_pid(service.pid_file) is None and not port_open(service.port)

        if not wait_for(gone, timeout=10.0, interval=0.05):
            raise AssertionError(f"MongoDB-compatible server PID {pid} survived SIGKILL")
    service.pid_file.unlink(missing_ok=True)


@dataclass
class OutputReader:
    """Reads a namespace's output topics from the beginning, in the background."""

    settings: Settings
    namespace: str
    ids: dict[str, Counter[str]] = field(default_factory=dict)
    undecodable: list[str] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)

    def seen(self, name: str) -> set[str]:
        """Return the distinct message ids read so far from one contract output topic."""
        return set(self.ids.get(name, ()))

    @property
    def distinct(self) -> int:
        """How many distinct ids have been read, over all output topics."""
        return sum(len(c) for c in self.ids.values())

    def _take(self, name: str, raw: bytes | None) -> None:
        try:
            value = json.loads(raw or b"")
            message_id = str(value["id"])
        except (ValueError, KeyError, TypeError):
            self.undecodable.append(f"{name}: {raw!r}")
            return
        self.ids.setdefault(name, Counter())[message_id] += 1
        if name == names.DEAD_LETTER:
            self.dead_letters.append(value)

    async def _run(self, consumer: AIOKafkaConsumer, by_topic: dict[str, str]) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                for record in records:
                    self._take(by_topic[tp.topic], record.value)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[OutputReader]:
        """Read in a background task while the block runs."""
        by_topic = {topic(self.namespace, t): t for t in names.OUTPUT_TOPICS}
        partitions = await topic_partitions(self.settings, by_topic)
        consumer = kafka_consumer(self.settings, group_id=None)
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            task = asyncio.create_task(self._run(consumer, by_topic))
            try:
                yield self
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            await consumer.stop()


async def topic_partitions(settings: Settings, topics: Iterable[str]) -> list[TopicPartition]:
    """Return every partition of these topics (a producer's metadata call waits for them)."""
    producer = kafka_producer(settings)
    await producer.start()
    try:
        return [
            TopicPartition(t, p) for t in topics for p in sorted(await producer.partitions_for(t))
        ]
    finally:
        await producer.stop()


async def read_to_end(settings: Settings, topic: str) -> list[dict[str, Any]]:
    """Return every message on a namespaced topic, up to its end offsets when called.

    Reads until each partition's position reaches the end offset it had at the call, so a
    slow fetch cannot end the read early (an empty poll proves nothing).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(settings, [topic])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[dict[str, Any]] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batch = await consumer.getmany(timeout_ms=500)
            found += [json.loads(r.value) for part in batch.values() for r in part if r.value]
        return found
    finally:
        await consumer.stop()


def state_mismatches(load: Load, states: dict[str, CustomerState]) -> list[str]:
    """Describe every customer whose stored state differs from the oracle's."""
    problems = []
    for customer_id in load.customers:
        expected = comparable(load.expected[customer_id])
        stored = states.get(customer_id)
        if stored is None:
            problems.append(f"{customer_id}: not stored")
            continue
        actual = comparable(stored)
        diff = {k: (actual[k], expected[k]) for k in expected if actual[k] != expected[k]}
        if diff:
            problems.append(f"{customer_id}: (stored, expected) {diff}")
    return problems


def output_problems(load: Load, reader: OutputReader) -> list[str]:
    """Describe missing and unexpected output ids (a repeated id is allowed)."""
    problems = []
    for name in names.OUTPUT_TOPICS:
        expected = load.expected_outputs.get(name, set())
        seen = reader.seen(name)
        missing, unexpected = expected - seen, seen - expected
        if missing:
            problems.append(f"{name}: {len(missing)} missing, e.g. {sorted(missing)[:5]}")
        if unexpected:
            problems.append(f"{name}: {len(unexpected)} unexpected, e.g. {sorted(unexpected)[:5]}")
    problems += [f"undecodable output {u}" for u in reader.undecodable[:5]]
    return problems


def summary(problems: list[str], limit: int = 15) -> str:
    """The first problems, one per line, and how many more there are."""
    more = f"\n... and {len(problems) - limit} more" if len(problems) > limit else ""
    return "\n".join(problems[:limit]) + more


async def wait_for_oracle(
    pipeline: Pipeline,
    load: Load,
    reader: OutputReader,
    *,
    within: float,
    workers: Sequence[Worker] = (),
) -> None:
    """Wait until every state equals the oracle's and every expected output id was read."""
    last: list[str] = []

    async def converged() -> bool:
        nonlocal last
        # Outputs first: cheap (in memory) and usually the last thing to complete.
        last = output_problems(load, reader)
        if any("missing" in p for p in last):
            return False
        last = state_mismatches(load, await pipeline.read_states(load.customers))
        return not last

    def detail() -> str:
        return summary(last) + "".join("\n" + w.describe() for w in workers)

    await eventually(
        converged,
        within=within,
        what="the oracle's states and outputs",
        detail=detail,
        interval=1.0,
    )
