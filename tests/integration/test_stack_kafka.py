"""The local Kafka broker: start-up, topics, consumer groups and a faust worker against it."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

from settings import Settings
from stack.kafka import KafkaService
from stack.process import StackError, read_pid
from tests.integration.waiting import eventually
from topics.admin import TopicLayoutError, ensure_namespace_topics, ensure_topics
from topics.names import ALL_TOPICS, Topics

pytestmark = pytest.mark.integration


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


async def test_namespace_topics_are_created_apart(
    kafka: Settings, admin: AIOKafkaAdminClient, unique: str
) -> None:
    names = Topics(f"ns-{unique}.")
    created = await ensure_namespace_topics(kafka.kafka_bootstrap, 2, names.namespace)
    assert sorted(created) == sorted(names.all)
    counts = await partition_counts(admin)
    assert {t: counts[t] for t in names.all} == dict.fromkeys(names.all, 2)
    assert await ensure_namespace_topics(kafka.kafka_bootstrap, 2, names.namespace) == []
    with pytest.raises(TopicLayoutError, match="partitions"):
        await ensure_namespace_topics(kafka.kafka_bootstrap, 3, names.namespace)
    await admin.delete_topics(list(names.all))


class _LateBroker:
    """A port in front of the broker that drops every connection until ``open`` is called."""

    def __init__(self, target: str) -> None:
        self.host, port = target.rsplit(":", 1)
        self.port = int(port)
        self.dropped = 0
        self.opened = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.opened:
            self.dropped += 1
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            finally:
                dst.close()

        await asyncio.gather(
            pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True
        )


async def test_a_service_waits_for_a_broker_that_is_not_up_yet(
    kafka: Settings, admin: AIOKafkaAdminClient, unique: str
) -> None:
    """A worker or consumers process started during a broker restart waits instead of exiting."""
    late = _LateBroker(kafka.kafka_bootstrap)
    server = await asyncio.start_server(late.handle, "127.0.0.1", 0)
    bootstrap = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    topic = f"t-late-{unique}"
    try:
        # A one-off command fails at once.
        with pytest.raises(TopicLayoutError, match="failed"):
            await ensure_topics(bootstrap, 2, topics=[topic], same_count=[topic], within=60)
        waiting = asyncio.create_task(
            ensure_topics(
                bootstrap, 2, topics=[topic], same_count=[topic], within=60, wait_for_broker=True
            )
        )
        first = late.dropped

        async def refused_again() -> bool:
            return late.dropped >= first + 2

        await eventually(refused_again, within=30, what="the service to try again")
        assert not waiting.done()
        late.opened = True
        assert await waiting == [topic]
    finally:
        server.close()
    await admin.delete_topics([topic])


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
        await eventually(owned(first), within=60, what="the first member to own both partitions")
        await second.start()
        try:
            await eventually(owned(first, second), within=60, what="a split after the join")
        finally:
            await second.stop()
        await eventually(owned(first), within=60, what="the survivor to own both partitions")
    finally:
        await first.stop()
