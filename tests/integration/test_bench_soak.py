"""``loyalty bench soak`` on the real stack: a fraction of a minute, sampled every few seconds."""

from __future__ import annotations

import pytest

from bootstrap import kafka_consumer, kafka_producer, mongo_client
from cli.soak_report import GROUPS
from cli.soak_run import LagReader, Options, Soak, SoakError, alive
from settings import Settings
from stack.process import free_port
from tests.integration.waiting import eventually
from topics.admin import ensure_namespace_topics
from topics.names import Topics


def _soak(settings: Settings, **options: float) -> Soak:
    return Soak(
        settings,
        Options(
            minutes=options.get("minutes", 0.4),
            rate=options.get("rate", 40),
            rate_source="test",
            sample_seconds=options.get("sample_seconds", 4),
            warmup_minutes=0,
            active_customers=40,
            drain_seconds=180,
        ),
        command="test",
        machine="test",
        progress=lambda _: None,
    )


async def test_lag_counts_what_a_group_has_not_committed(stack: Settings, unique: str) -> None:
    topics = Topics(f"lag{unique}.")
    await ensure_namespace_topics(stack.kafka_bootstrap, stack.topic_partitions, topics.namespace)
    group = f"{topics.namespace}reader"
    reader = LagReader(stack, {"worker": (group, (topics.orders,))})
    producer = kafka_producer(stack)
    await producer.start()
    try:
        for n in range(7):
            await producer.send_and_wait(topics.orders, b"{}", key=f"k{n}".encode())
    finally:
        await producer.stop()
    await reader.start()
    consumer = kafka_consumer(stack, topics.orders, group_id=group)
    try:
        assert await reader.lag() == {"worker": 7}
        await consumer.start()
        seen = 0
        while seen < 7:
            batches = await consumer.getmany(timeout_ms=1000)
            seen += sum(len(records) for records in batches.values())
        await consumer.commit()
        assert await reader.lag() == {"worker": 0}
    finally:
        await consumer.stop()
        await reader.stop()


def test_the_soak_refuses_to_run_without_the_stack(settings: Settings) -> None:
    nowhere = settings.model_copy(update={"kafka_port": free_port(), "mongo_port": free_port()})
    with pytest.raises(SoakError, match="the local stack is not up") as error:
        _soak(nowhere).check_stack()
    assert "Kafka" in str(error.value)
    assert "MongoDB" in str(error.value)


async def test_a_short_soak_samples_every_process_drains_and_stops_what_it_started(
    stack: Settings,
) -> None:
    soak = _soak(stack)
    report = await soak.run()

    assert len(report.samples) >= 5
    for sample in report.samples:
        assert set(sample.rss_mb) == {"worker", "consumers", "smtp", "kafka", "mongodb"}
        assert set(sample.lag) == set(GROUPS)
    assert report.samples[-1].produced > 0
    assert report.samples[-1].applied > 0
    assert report.drain_seconds is not None
    assert report.final_lag == dict.fromkeys(GROUPS, 0)
    assert report.final_outbox == 0
    produced = sum(report.counts.values())
    assert report.final_applied is not None
    assert report.final_applied >= produced
    assert report.final_emails, "orders crossed tiers, so emails were sent"
    assert set(report.counts) >= {"customer.upserted", "order.paid", "points.adjust"}

    assert set(report.stopped) == {"worker", "consumers", "smtp"}
    assert all(report.stopped.values())
    for pid in soak.started.values():
        assert not alive(pid)
    assert alive(soak.pids["kafka"] or 0), "the shared servers are left running"

    # The run's topics and database are gone (topic deletion completes asynchronously).
    client = mongo_client(stack)
    try:
        assert soak.own.mongo_database not in await client.list_database_names()
    finally:
        await client.close()

    async def topics_gone() -> bool:
        consumer = kafka_consumer(stack, group_id=None)
        await consumer.start()
        try:
            return not any(t.startswith(soak.topics.namespace) for t in await consumer.topics())
        finally:
            await consumer.stop()

    await eventually(topics_gone, within=30, what="the run's topics deleted", interval=1)


async def test_a_soak_that_fails_after_starting_its_processes_stops_them(stack: Settings) -> None:
    soak = _soak(stack)
    # A group on a topic name Kafka refuses: the lag reader fails once everything started.
    soak.lag_reader.groups = {"worker": ("nobody", (f"{soak.topics.namespace}not a topic!",))}
    with pytest.raises(SoakError, match="no partitions found"):
        await soak.run()
    assert set(soak.started) == {"worker", "consumers", "smtp"}
    for pid in soak.started.values():
        assert not alive(pid)
