"""Crashes, rebalances and a MongoDB outage mid-stream lose nothing and apply nothing twice.

Each test publishes a seeded stream of a few thousand mixed messages over hundreds of customers
to its own topic namespace, runs `loyalty worker` processes against its own database, breaks
something in the middle, and then requires that every customer's stored state equals the
oracle (``models.decide`` applied to that customer's messages in order) and that every output
id the oracle expects is on the output topics (repeats allowed; a missing or unexpected id is
not; nothing reaches the dead-letter topic).
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from program_file import load_program
from settings import Settings
from tests.integration.pipeline_harness import (
    OutputReader,
    Pipeline,
    Worker,
    crash,
    own_mongo,
    wait_for_oracle,
    workers_stopped,
)
from tests.integration.pipeline_load import generate
from tests.integration.pipeline_oracle import Load, comparable, replay, worker_orders
from tests.integration.waiting import eventually

pytestmark = pytest.mark.integration

CUSTOMERS = 250
CONVERGE_SECONDS = 240.0


def _load(settings: Settings, unique: str, seed: int) -> Load:
    return generate(
        load_program(settings.program_file), customers=CUSTOMERS, seed=seed, run_id=unique
    )


async def _progress(reader: OutputReader, load: Load, share: float, worker: Worker) -> None:
    """Wait until the worker has published a share of the outputs the whole load makes."""
    wanted = int(load.output_count * share)

    async def reached() -> bool:
        return reader.distinct >= wanted

    await eventually(
        reached, within=120.0, what=f"{wanted} output ids (progress)", detail=worker.describe
    )


async def _handled(worker: Worker) -> bool:
    return await asyncio.to_thread(worker.events) > 0


def test_load_outcome_does_not_depend_on_the_order_between_topics() -> None:
    """The oracle is only right if any interleaving a worker may see gives the same result."""
    program = load_program(Path("program.example.yaml"))
    load = generate(program, customers=CUSTOMERS, seed=11, run_id="order")
    for seed in range(3):
        rng = random.Random(seed)
        other = replay(program, load.stream, load.now, lambda ms, rng=rng: worker_orders(ms, rng))
        assert {c: comparable(s) for c, s in other.states.items()} == {
            c: comparable(s) for c, s in load.expected.items()
        }
        assert other.outputs == load.expected_outputs
    # The load really mixes: several message types, parked messages, refusals, tier changes.
    kinds = {item.envelope["type"] for item in load.stream}
    assert {
        "order.paid",
        "order.refunded",
        "points.adjust",
        "reward.redeem",
        "tier.manage",
    } <= kinds
    first_seen: dict[str, str] = {}
    for item in load.stream:
        first_seen.setdefault(str(item.envelope["customer_id"]), item.envelope["type"])
    assert sum(kind != "customer.upserted" for kind in first_seen.values()) >= CUSTOMERS // 20


async def test_worker_killed_mid_stream_and_restarted(
    stack: Settings, unique: str, tmp_path: Path
) -> None:
    pipeline = Pipeline.isolated(stack, unique)
    load = _load(stack, unique, seed=1)
    await pipeline.create_topics()
    half = len(load.stream) // 2
    await pipeline.publish(load.stream[:half])
    worker = pipeline.worker(tmp_path / "worker")
    async with OutputReader(pipeline.settings, pipeline.namespace).running() as reader:
        with workers_stopped(worker):
            worker.start()
            await worker.ready()
            await _progress(reader, load, 0.1, worker)
            publishing = asyncio.create_task(pipeline.publish(load.stream[half:]))
            worker.kill()
            killed_at = reader.distinct
            await publishing
            assert killed_at < load.output_count, "the crash must land mid-stream"
            worker.start()
            await worker.ready()
            await wait_for_oracle(pipeline, load, reader, within=CONVERGE_SECONDS, workers=[worker])
    assert reader.dead_letters == []
    await pipeline.clean_up()


async def test_two_workers_share_partitions_and_one_leaves_mid_stream(
    stack: Settings, unique: str, tmp_path: Path
) -> None:
    pipeline = Pipeline.isolated(stack, unique)
    load = _load(stack, unique, seed=2)
    await pipeline.create_topics()
    third = len(load.stream) // 3
    first = pipeline.worker(tmp_path / "first", "first")
    second = pipeline.worker(tmp_path / "second", "second")
    async with OutputReader(pipeline.settings, pipeline.namespace).running() as reader:
        with workers_stopped(first, second):
            first.start()
            await first.ready()
            await pipeline.publish(load.stream[:third])
            await _progress(reader, load, 0.05, first)
            second.start()  # joins the group: the partitions are split between the two
            await second.ready()
            # Publish the middle third only once the rebalance gave both workers partitions:
            # otherwise the first may drain it before the second holds any partition.
            await pipeline.worker_group_settled(members=2)
            await pipeline.publish(load.stream[third : 2 * third])
            await _progress(reader, load, 0.3, second)
            # Both had a share of the partitions before one of them leaves.
            await eventually(
                lambda: _handled(second),
                within=60.0,
                what="the second worker to handle records",
                detail=second.describe,
            )
            handled_by_first = first.events()
            publishing = asyncio.create_task(pipeline.publish(load.stream[2 * third :]))
            await asyncio.to_thread(first.stop)  # its partitions move to the second worker
            await publishing
            await wait_for_oracle(
                pipeline, load, reader, within=CONVERGE_SECONDS, workers=[first, second]
            )
            assert handled_by_first > 0
    assert reader.dead_letters == []
    await pipeline.clean_up()


async def test_mongodb_stopped_mid_stream_and_started_again(
    stack: Settings, unique: str, tmp_path: Path
) -> None:
    load = _load(stack, unique, seed=3)
    with own_mongo(stack, tmp_path / "mongo") as mongo:
        pipeline = Pipeline.isolated(stack, unique, mongo_uri=mongo.uri)
        await pipeline.create_topics()
        half = len(load.stream) // 2
        worker = pipeline.worker(tmp_path / "worker")
        async with OutputReader(pipeline.settings, pipeline.namespace).running() as reader:
            with workers_stopped(worker):
                worker.start()
                await worker.ready()
                await pipeline.publish(load.stream[:half])
                await _progress(reader, load, 0.1, worker)
                publishing = asyncio.create_task(pipeline.publish(load.stream[half:]))
                crash(mongo)
                await publishing
                await worker.unready()
                assert worker.running, "a MongoDB outage must not stop the worker"
                mongo.start()
                await worker.ready()
                await wait_for_oracle(
                    pipeline, load, reader, within=CONVERGE_SECONDS, workers=[worker]
                )
        assert reader.dead_letters == []
        await pipeline.clean_up()
