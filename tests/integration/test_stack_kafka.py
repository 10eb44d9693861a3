"""The local Kafka broker: start-up, topics, consumer groups and a faust worker against it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

from settings import Settings
from stack.kafka import KafkaService
from stack.process import StackError, read_pid
from topics.admin import TopicLayoutError, ensure_topics
from topics.names import ALL_TOPICS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kafka(settings: Settings) -> Settings:
    """Only the broker (the shared `stack` fixture also starts MongoDB and SMTP)."""
    service = KafkaService(settings)
    service.install()
    service.start()
    return settings


@pytest.fixture
async def admin(kafka: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=kafka.kafka_bootstrap)
    await client.start()
    yield client
    await client.close()


async def eventually(
    check: Callable[[], Awaitable[bool]],
    *,
    within: float,
    what: str,
    detail: Callable[[], str] = str,
) -> None:
    """Poll an async condition until it holds; fail with `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within} s waiting for {what}\n{detail()}")
        await asyncio.sleep(0.1)


async def partition_counts(admin: AIOKafkaAdminClient) -> dict[str, int]:
    metadata = await admin._get_cluster_metadata(topics=None)
    return {t["topic"]: len(t["partitions"]) for t in metadata.to_object()["topics"]}


# -- the service ---------------------------------------------------------------------------


def test_start_is_idempotent(kafka: Settings) -> None:
    service = KafkaService(kafka)
    pid = read_pid(service.pid_file)
    assert pid is not None
    service.start()
    assert read_pid(service.pid_file) == pid
    status = service.status()
    assert status.healthy
    assert status.pid == pid
    assert status.port == kafka.kafka_port
    assert kafka.kafka_version in status.detail


def test_install_is_cached(kafka: Settings) -> None:
    service = KafkaService(kafka)
    started = time.monotonic()
    service.install()
    assert time.monotonic() - started < 1.0
    assert any(service.libs.glob(f"kafka_2.13-{kafka.kafka_version}.jar"))


def test_port_used_by_another_program_is_a_clear_error(kafka: Settings, tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        other = Settings(stack_dir=tmp_path, kafka_port=port, kafka_controller_port=port + 1)
        with pytest.raises(StackError, match=f"port {port} is in use by another program"):
            KafkaService(other).start()
    # The port check comes first: nothing was downloaded for the throwaway stack dir.
    assert not (tmp_path / "kafka").exists() or not KafkaService(other).installed()


# -- topics --------------------------------------------------------------------------------


async def test_contract_topics_exist_with_configured_partitions(
    kafka: Settings, admin: AIOKafkaAdminClient
) -> None:
    counts = await partition_counts(admin)
    assert {t: counts.get(t) for t in ALL_TOPICS} == dict.fromkeys(
        ALL_TOPICS, kafka.topic_partitions
    )
    # A second run creates nothing.
    assert await ensure_topics(kafka.kafka_bootstrap, kafka.topic_partitions) == []


async def test_ensure_topics_refuses_input_topic_with_other_partition_count(
    kafka: Settings, admin: AIOKafkaAdminClient, unique: str
) -> None:
    good, bad = f"t-good-{unique}", f"t-bad-{unique}"
    await admin.create_topics([NewTopic(bad, 2, 1)])
    await eventually(lambda: _has_topic(admin, bad), within=10, what=f"topic {bad} in the metadata")
    with pytest.raises(TopicLayoutError, match=f"{bad} has 2"):
        await ensure_topics(kafka.kafka_bootstrap, 3, topics=[good, bad], same_count=[good, bad])
    # Nothing is created while the layout is wrong.
    assert good not in await partition_counts(admin)
    created = await ensure_topics(kafka.kafka_bootstrap, 3, topics=[good, bad], same_count=[good])
    assert created == [good]
    assert (await partition_counts(admin))[good] == 3
    await admin.delete_topics([good, bad])


async def _has_topic(admin: AIOKafkaAdminClient, topic: str) -> bool:
    return topic in await partition_counts(admin)


# -- consumer groups -----------------------------------------------------------------------


async def test_committed_offset_survives_consumer_restart(kafka: Settings, unique: str) -> None:
    topic, group = f"t-roundtrip-{unique}", f"g-roundtrip-{unique}"
    partitions, per_partition, done = 2, 10, 4
    await ensure_topics(kafka.kafka_bootstrap, partitions, topics=[topic], same_count=[topic])

    producer = AIOKafkaProducer(bootstrap_servers=kafka.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for p in range(partitions):
            for i in range(per_partition):
                await producer.send_and_wait(topic, f"{p}:{i}".encode(), partition=p)
    finally:
        await producer.stop()

    def consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka.kafka_bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )

    # First consumer: reads everything but "processes" only the first `done` of each partition.
    first = consumer()
    await first.start()
    seen: list[tuple[int, int]] = []
    try:

        async def read_all() -> bool:
            for records in (await first.getmany(timeout_ms=200)).values():
                seen.extend((r.partition, r.offset) for r in records)
            return len(seen) >= partitions * per_partition

        await eventually(read_all, within=30, what="the first consumer to read every record")
        await first.commit(
            {TopicPartition(topic, p): OffsetAndMetadata(done, "") for p in range(partitions)}
        )
    finally:
        await first.stop()

    # Second consumer, same group: resumes exactly after the committed offsets.
    second = consumer()
    await second.start()
    resumed: list[bytes] = []
    try:

        async def read_rest() -> bool:
            for records in (await second.getmany(timeout_ms=200)).values():
                resumed.extend(r.value for r in records if r.value is not None)
            return len(resumed) >= partitions * (per_partition - done)

        await eventually(read_rest, within=30, what="the second consumer to read the rest")
        for p in range(partitions):
            assert await second.committed(TopicPartition(topic, p)) == done
        # Nothing more arrives: no record before the committed offset is delivered again.
        extra = await second.getmany(timeout_ms=500)
        assert not any(extra.values())
    finally:
        await second.stop()
    expected = {f"{p}:{i}".encode() for p in range(partitions) for i in range(done, per_partition)}
    assert sorted(resumed) == sorted(expected)


async def test_group_rebalances_when_members_join_and_leave(kafka: Settings, unique: str) -> None:
    topic, group = f"t-rebalance-{unique}", f"g-rebalance-{unique}"
    await ensure_topics(kafka.kafka_bootstrap, 2, topics=[topic], same_count=[topic])

    def member() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka.kafka_bootstrap,
            group_id=group,
            heartbeat_interval_ms=300,
            session_timeout_ms=6000,
        )

    def owned(*members: AIOKafkaConsumer) -> Callable[[], Awaitable[bool]]:
        """Condition: each member owns exactly its share (2 partitions split evenly)."""

        async def check() -> bool:
            for m in members:
                await m.getmany(timeout_ms=50)  # drives heartbeats and rejoins
            return all(len(m.assignment()) == 2 // len(members) for m in members)

        return check

    first, second = member(), member()
    await first.start()
    try:
        await eventually(owned(first), within=20, what="the first member to own both partitions")
        await second.start()
        try:
            await eventually(owned(first, second), within=20, what="a split after the join")
        finally:
            await second.stop()
        await eventually(owned(first), within=20, what="the survivor to own both partitions")
    finally:
        await first.stop()


# -- faust ---------------------------------------------------------------------------------

# FAUST_RECOVERY_RACE (faust-streaming 0.15.3, a faust issue seen on Kafka 4.4.0 and 3.9.2 alike):
# a worker with a table, restarted while source events wait, resumes the source partitions
# while its fetcher already runs for the changelog and seeks them to the committed offsets
# only afterwards (faust/tables/recovery.py, on_recovery_completed). Measured: the waiting
# events were processed twice in 6 of 12 restarts, and about 1 restart in 20 skipped one event
# for good (its offset committed, never processed). Without tables (the stateless test below)
# 12 of 12 restarts processed each event exactly once. So the table test produces only once
# the worker is ready, and the workers should not use faust tables.

FAUST_APP = textwrap.dedent(
    """
    import json, os

    import faust

    app = faust.App(
        os.environ["PROBE_APP"],
        broker="kafka://" + os.environ["PROBE_BOOTSTRAP"],
        store="memory://",
        topic_partitions=2,
        web_enabled=False,
    )
    source = app.topic(
        os.environ["PROBE_TOPIC"], key_type=bytes, value_type=bytes,
        key_serializer="raw", value_serializer="raw",
    )
    counts = app.Table("counts", default=int, partitions=2)

    @app.agent(source)
    async def count(stream):
        async for key, value in stream.items():
            counts[key.decode()] += 1
            with open(os.environ["PROBE_OUT"], "a") as out:
                out.write(json.dumps({"key": key.decode(), "count": counts[key.decode()]}) + "\\n")
    """
)


# The shape the workers use: no faust table (state lives in MongoDB); records where it was.
FAUST_STATELESS_APP = textwrap.dedent(
    """
    import json, os

    import faust

    app = faust.App(
        os.environ["PROBE_APP"],
        broker="kafka://" + os.environ["PROBE_BOOTSTRAP"],
        topic_partitions=2,
        web_enabled=False,
    )
    source = app.topic(
        os.environ["PROBE_TOPIC"], key_type=bytes, value_type=bytes,
        key_serializer="raw", value_serializer="raw",
    )

    @app.agent(source)
    async def record(stream):
        async for event in stream.events():
            with open(os.environ["PROBE_OUT"], "a") as out:
                out.write(json.dumps([event.message.partition, event.message.offset]) + "\\n")
    """
)


class FaustWorker:
    """One `faust worker` subprocess running FAUST_APP, with its log kept for failures."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.log_path = tmp_path / f"worker-{time.monotonic_ns()}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "faust",
                    "-A",
                    "probe_app",
                    "worker",
                    "-l",
                    "info",
                    "--without-web",
                ],
                cwd=tmp_path,
                env={**os.environ, **env, "PYTHONPATH": str(tmp_path)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> int:
        """SIGTERM, as a supervisor would, and return the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail("faust worker did not stop within 30 s:\n" + self.log())


async def test_faust_agent_table_commit_and_recovery(
    kafka: Settings, admin: AIOKafkaAdminClient, tmp_path: Path, unique: str
) -> None:
    topic, app_id, out = f"t-faust-{unique}", f"faust-{unique}", tmp_path / "out.jsonl"
    (tmp_path / "probe_app.py").write_text(FAUST_APP)
    env = {
        "PROBE_APP": app_id,
        "PROBE_BOOTSTRAP": kafka.kafka_bootstrap,
        "PROBE_TOPIC": topic,
        "PROBE_OUT": str(out),
    }
    # faust does not create its source topics.
    await ensure_topics(kafka.kafka_bootstrap, 2, topics=[topic], same_count=[topic])
    producer = AIOKafkaProducer(bootstrap_servers=kafka.kafka_bootstrap, acks="all")
    await producer.start()

    async def produce(n: int) -> None:
        for i in range(n):
            await producer.send_and_wait(topic, b"x", key=f"c{i % 2}".encode())

    def outputs() -> list[dict[str, object]]:
        if not out.exists():
            return []
        return [json.loads(line) for line in out.read_text().splitlines()]

    async def committed() -> int:
        offsets = await admin.list_consumer_group_offsets(app_id)
        return sum(o.offset for tp, o in offsets.items() if tp.topic == topic)

    async def processed(n: int) -> bool:
        assert worker.proc.poll() is None, "faust worker exited:\n" + worker.log()
        return len(outputs()) >= n

    async def ready(worker: FaustWorker) -> None:
        await eventually(
            lambda: _logged(worker, "Worker ready"),
            within=30,
            what="faust worker ready",
            detail=worker.log,
        )

    try:
        worker = FaustWorker(tmp_path, env)
        try:
            await ready(worker)
            await produce(10)
            await eventually(
                lambda: processed(10),
                within=30,
                what="faust to process 10 events",
                detail=worker.log,
            )
            await eventually(
                lambda: _ge(committed(), 10),
                within=30,
                what="faust to commit offset 10",
                detail=worker.log,
            )
        finally:
            assert worker.stop() == 0, worker.log()

        # A new worker restores the table from its changelog and resumes after the commit.
        worker = FaustWorker(tmp_path, env)
        try:
            await ready(worker)  # no backlog during recovery: FAUST_RECOVERY_RACE above
            await produce(4)
            await eventually(
                lambda: processed(14),
                within=30,
                what="faust to process 4 more events",
                detail=worker.log,
            )
        finally:
            assert worker.stop() == 0, worker.log()
    finally:
        await producer.stop()

    rows = outputs()
    assert len(rows) == 14, json.dumps(rows)  # each event once across the restart
    # The counts continue from the first run: the table was restored from its changelog.
    assert [r["count"] for r in rows[10:] if r["key"] == "c0"] == [6, 7]
    assert "Traceback" not in worker.log()


async def _logged(worker: FaustWorker, text: str) -> bool:
    return text in worker.log_path.read_text(errors="replace")


async def _ge(value: Awaitable[int], floor: int) -> bool:
    return await value >= floor


async def test_faust_stateless_worker_restart_with_backlog(
    kafka: Settings, admin: AIOKafkaAdminClient, tmp_path: Path, unique: str
) -> None:
    """Without tables, events waiting at restart are each processed once (no recovery race)."""
    topic, app_id, out = f"t-faust-sl-{unique}", f"faust-sl-{unique}", tmp_path / "out.jsonl"
    (tmp_path / "probe_app.py").write_text(FAUST_STATELESS_APP)
    env = {
        "PROBE_APP": app_id,
        "PROBE_BOOTSTRAP": kafka.kafka_bootstrap,
        "PROBE_TOPIC": topic,
        "PROBE_OUT": str(out),
    }
    await ensure_topics(kafka.kafka_bootstrap, 2, topics=[topic], same_count=[topic])
    producer = AIOKafkaProducer(bootstrap_servers=kafka.kafka_bootstrap, acks="all")
    await producer.start()

    async def produce(n: int) -> None:
        for i in range(n):
            await producer.send_and_wait(topic, b"x", key=f"c{i % 2}".encode())

    def seen() -> list[tuple[int, int]]:
        lines = out.read_text().splitlines() if out.exists() else []
        return [(p, o) for p, o in map(json.loads, lines)]

    async def count_at_least(n: int) -> bool:
        return len(seen()) >= n

    async def committed() -> int:
        offsets = await admin.list_consumer_group_offsets(app_id)
        return sum(o.offset for tp, o in offsets.items() if tp.topic == topic)

    try:
        worker = FaustWorker(tmp_path, env)
        try:
            await eventually(
                lambda: _logged(worker, "Worker ready"),
                within=30,
                what="worker ready",
                detail=worker.log,
            )
            await produce(10)
            await eventually(
                lambda: count_at_least(10), within=30, what="10 events", detail=worker.log
            )
            await eventually(
                lambda: _ge(committed(), 10), within=30, what="commit of 10", detail=worker.log
            )
        finally:
            assert worker.stop() == 0, worker.log()
        await produce(4)  # a backlog waits for the next worker
        worker = FaustWorker(tmp_path, env)
        try:
            await eventually(
                lambda: count_at_least(14), within=30, what="the backlog", detail=worker.log
            )
            await eventually(
                lambda: _ge(committed(), 14), within=30, what="commit of 14", detail=worker.log
            )
        finally:
            assert worker.stop() == 0, worker.log()
    finally:
        await producer.stop()

    records = seen()
    assert len(records) == len(set(records)) == 14, records
    end = await _end_offsets(kafka, topic)
    assert sorted(records) == [(p, o) for p in sorted(end) for o in range(end[p])]


async def _end_offsets(kafka: Settings, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.kafka_bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(2)]
        return {tp.partition: o for tp, o in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()
