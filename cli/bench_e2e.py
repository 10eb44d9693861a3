"""One run of ``loyalty bench pipeline``: the worker end to end, against ceilings from the same run.

1. pre-load a topic with N order events over C customers (seeded into the store first);
2. the consume ceiling: read that topic raw (and parsed into envelopes);
3. the store ceiling: the worker's round trips per batch, without Kafka and the rules
   (``cli.bench_store``);
4. end to end: a `loyalty worker` process drains the topic; events/s from its own counter of
   persisted events (10% to 90% of the run), as a ratio to the slower ceiling, with the CPU
   each process used meanwhile (what bounds the rate);
5. latency from produce to the published ``tier.changed`` at half that rate;
6. customers with no history against customers with a long one (seeded through the rules).

Everything runs under its own topic namespace and databases, dropped at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from pymongo import AsyncMongoClient

from admin.benchmark import delete_namespace
from bootstrap import kafka_producer
from cli.bench_load import Envelope, Seeder, consume_rates, order_paid, orders_over, produce
from cli.bench_store import CommandTimer, StoreResult, measure_store
from cli.bench_watch import PROGRESS_SECONDS, Counter, cpu_seconds, steady_rate
from client_options import mongo_options
from demo.readback import OutputTail
from models.program import Program
from settings import Settings
from stack.kafka import KafkaService
from stack.mongo import MongoService
from stack.process import free_port, read_pid
from stack.worker import WorkerProcess
from store.indexes import ensure_indexes
from store.mongo import MongoCustomerRepository
from topics.admin import ensure_namespace_topics
from topics.names import Topics

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    """Sizes of one run."""

    events: int = 100_000
    customers: int = 10_000
    store_events: int = 10_000
    probes: int = 1_000
    history_customers: int = 100
    history_orders: int = 1_000
    history_events: int = 20
    """Events per history customer, per measurement."""
    history_rounds: int = 5
    """Rounds of the history phase, each measuring both groups (in alternating order)."""
    keep: bool = False


@dataclass
class Report:
    """Everything the command prints (and docs/BENCHMARKS.md records)."""

    options: Options
    produce_rate: float = 0.0
    consume_raw: float = 0.0
    consume_parsed: float = 0.0
    store: StoreResult | None = None
    end_to_end: float = 0.0
    end_to_end_seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU used per process during the end-to-end run, as a share of one core."""
    latency_rate: float = 0.0
    latencies: list[float] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=dict)
    """Events/s per history group ("0" and the prior order count), one entry per round."""
    history_load: list[float] = field(default_factory=list)
    """The machine's 1-minute load average at the start of each history round."""
    worker_log: Path | None = None

    @property
    def ceiling(self) -> float:
        """The slower of the two ceilings."""
        store = self.store.events_per_second if self.store else 0.0
        return min(self.consume_parsed, store) if store else self.consume_parsed

    def percentile(self, share: float) -> float:
        """A latency percentile in seconds (nearest rank)."""
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass
class Bench:
    """One run of the pipeline benchmark."""

    settings: Settings
    program: Program
    options: Options
    progress: Progress
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        self.topics = Topics(f"bench{self.run}.")
        self.worker_settings = self.settings.model_copy(
            update={
                "topic_namespace": self.topics.namespace,
                "mongo_database": f"bench_{self.run}",
                "stack_dir": self.settings.stack_dir.resolve(),
                # Its own port: two benches at once (or a bench beside `loyalty worker`) must
                # not read each other's worker through a shared one.
                "web_port": free_port(self.settings.web_host),
            }
        )
        self.code_key = self.settings.code_key()

    def ids(self, prefix: str, count: int) -> list[str]:
        """Customer ids of one group of this run."""
        return [f"b{self.run}-{prefix}-{n:06d}" for n in range(count)]

    async def repository(
        self, database: str, timer: CommandTimer | None = None
    ) -> MongoCustomerRepository:
        """Open the real repository on a database of this run (indexes created)."""
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            self.settings.mongo_uri,
            tz_aware=True,
            serverSelectionTimeoutMS=10_000,
            event_listeners=[timer] if timer else [],
            **mongo_options(self.settings),  # the service's write concern, measured as it runs
        )
        db = client[database]
        await ensure_indexes(db)
        return MongoCustomerRepository(
            db,
            hot_orders=self.settings.store_hot_orders,
            load_chunk=self.settings.store_load_chunk,
            order_slack=self.settings.store_hot_orders_slack,
            id_slack=self.settings.store_hot_ids_slack,
            client=client,
        )

    async def run_all(self) -> Report:
        """Run every phase and return the report."""
        report = Report(self.options)
        opts = self.options
        await ensure_namespace_topics(
            self.settings.kafka_bootstrap,
            self.settings.topic_partitions,
            self.topics.namespace,
        )
        customers = self.ids("c", opts.customers)
        events = orders_over(
            customers, opts.events, self.now - timedelta(days=1), self.program.currency
        )
        self.progress(f"pre-loading {len(events)} order events over {len(customers)} customers")
        report.produce_rate = await produce(self.settings, self.topics.orders, events)
        report.consume_raw, report.consume_parsed = await consume_rates(
            self.settings, self.topics.orders, len(events)
        )
        report.store = await self.store_ceiling(customers, events)
        try:
            await self.end_to_end(report, customers, len(events))
        finally:
            if not opts.keep:
                await self.clean_up()
        return report

    async def store_ceiling(self, customers: list[str], events: list[Envelope]) -> StoreResult:
        """Seed a copy of the customers and replay worker-sized batches through the store."""
        timer = CommandTimer()
        repository = await self.repository(f"bench_{self.run}_store", timer)
        try:
            seeder = Seeder(repository, self.program, self.code_key, self.now)
            self.progress("store ceiling: seeding the customers")
            await seeder.customers(customers, self.now - timedelta(days=2))
            sample = events[: self.options.store_events]
            self.progress(f"store ceiling: {len(sample)} events in worker-sized batches")
            return await measure_store(
                repository,
                timer,
                seeder,
                sample,
                batch_size=self.settings.worker_batch_size,
                now=self.now,
            )
        finally:
            await repository.close()

    async def end_to_end(self, report: Report, customers: list[str], total: int) -> None:
        """Drain the pre-loaded topic with a worker, then measure latency and history cost."""
        repository = await self.repository(self.worker_settings.mongo_database)
        seeder = Seeder(repository, self.program, self.code_key, self.now)
        self.progress("end to end: seeding the customers")
        await seeder.customers(customers, self.now - timedelta(days=2))
        await self.seed_probes_and_history(seeder)
        log_dir = self.settings.stack_dir.resolve() / "bench"
        worker = WorkerProcess(
            self.worker_settings,
            log_file=log_dir / f"worker-{self.run}.log",
            workdir=log_dir / f"worker-{self.run}",
        )
        report.worker_log = worker.log_file
        pids = {
            "mongodb server": read_pid(MongoService(self.settings).pid_file),
            "kafka broker": read_pid(KafkaService(self.settings).pid_file),
        }
        try:
            started = time.monotonic()
            worker.start()
            pids["worker"] = worker.pid
            await worker.wait_ready()
            counter = Counter(worker, "order.paid")
            self.progress(f"end to end: the worker drains {total} events")
            # CPU is compared over the steady part only (from 10% of the events to the end).
            early = await counter.until(total * 0.1)
            cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            steady_from = time.monotonic()
            samples = early + await counter.until(total)
            steady = time.monotonic() - steady_from
            elapsed = time.monotonic() - started
            report.cpu = {
                name: (cpu_seconds(pid) - cpu_before[name]) / steady for name, pid in pids.items()
            }
            report.end_to_end = steady_rate(samples, 0, total)
            report.end_to_end_seconds = elapsed
            await self.latency(report, seeder, counter)
            await self.history(report, seeder, counter)
        finally:
            await asyncio.to_thread(worker.stop)
            await repository.close()

    async def seed_probes_and_history(self, seeder: Seeder) -> None:
        """Seed, before the worker starts, the customers of the latency and history phases."""
        opts = self.options
        probes = self.ids("p", opts.probes)
        self.progress(f"latency: seeding {len(probes)} customers just below the first tier")
        await seeder.customers(probes, self.now - timedelta(days=2))
        threshold = min((t.threshold for t in self.program.tiers if t.threshold > 0), default=500)
        currency = self.program.currency
        await seeder.apply(
            [
                order_paid(c, 1, self.now - timedelta(hours=1), int(threshold) - 1, currency)
                for c in probes
            ]
        )
        fresh = self.ids("h0", opts.history_customers)
        long = self.ids("hl", opts.history_customers)
        self.progress(
            f"history: seeding {len(long)} customers with {opts.history_orders} orders each"
        )
        # The history stays inside the qualification period (one order an hour), so no time
        # event falls due for these customers while the worker runs.
        start = self.now - timedelta(hours=opts.history_orders + 48)
        await seeder.customers(fresh + long, start)
        await seeder.history(long, opts.history_orders, start + timedelta(hours=1))

    async def latency(self, report: Report, seeder: Seeder, counter: Counter) -> None:
        """Time produce -> tier.changed for orders that cross Silver, at half the e2e rate."""
        probes = self.ids("p", self.options.probes)
        currency = self.program.currency
        rate = max(1.0, report.end_to_end / 2)
        report.latency_rate = rate
        sent: dict[str, float] = {}
        received: dict[str, float] = {}
        tail = OutputTail(self.settings, [self.topics.tier_changes])
        await tail.start()  # pinned at the end before the first probe
        assert tail.consumer is not None
        producer = kafka_producer(self.settings)
        await producer.start()
        reader = asyncio.create_task(self._read_changes(tail.consumer, sent, received, len(probes)))
        try:
            self.progress(f"latency: {len(probes)} orders at {rate:.0f}/s")
            begin = time.monotonic()
            for n, customer_id in enumerate(probes):
                await asyncio.sleep(max(0.0, begin + n / rate - time.monotonic()))
                envelope = order_paid(customer_id, 2, self.now, 10, currency)
                sent[envelope["id"]] = time.monotonic()
                await producer.send(
                    self.topics.orders, json.dumps(envelope).encode(), key=customer_id.encode()
                )
            await producer.flush()
            await asyncio.wait_for(asyncio.shield(reader), timeout=PROGRESS_SECONDS)
        finally:
            reader.cancel()
            await producer.stop()
            await tail.stop()
        report.latencies = [received[k] - sent[k] for k in received if k in sent]

    @staticmethod
    async def _read_changes(
        consumer: AIOKafkaConsumer, sent: dict[str, float], received: dict[str, float], wanted: int
    ) -> None:
        while len(received) < wanted:
            batches = await consumer.getmany(timeout_ms=200)
            now = time.monotonic()
            for records in batches.values():
                for record in records:
                    cause = json.loads(record.value)["data"]["cause"]["id"]
                    if cause in sent:
                        received.setdefault(cause, now)

    async def history(self, report: Report, seeder: Seeder, counter: Counter) -> None:
        """Events/s for customers without history against customers with a long one."""
        opts = self.options
        fresh = self.ids("h0", opts.history_customers)
        long = self.ids("hl", opts.history_customers)
        report.history = {"0": [], str(opts.history_orders): []}
        currency = self.program.currency
        groups = [("0", fresh), (str(opts.history_orders), long)]
        for round_number in range(opts.history_rounds):
            report.history_load.append(os.getloadavg()[0])
            # Alternate which group goes first, so a drift in the machine's load between the
            # two halves of a round does not always favour the same group.
            for label, group in groups if round_number % 2 == 0 else groups[::-1]:
                first = opts.history_orders + 1 + round_number * opts.history_events
                events = [
                    order_paid(c, first + n, self.now - timedelta(minutes=5), 12, currency)
                    for n in range(opts.history_events)
                    for c in group
                ]
                before = await counter.read()
                started = time.monotonic()
                await produce(self.settings, self.topics.orders, events)
                await counter.until(before + len(events))
                report.history[label].append(len(events) / (time.monotonic() - started))
                self.progress(f"history {label} orders, round {round_number + 1}: done")

    async def clean_up(self) -> None:
        """Drop this run's databases and topics."""
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.settings.mongo_uri)
        try:
            for name in (self.worker_settings.mongo_database, f"bench_{self.run}_store"):
                await client.drop_database(name)
        finally:
            await client.close()
        await delete_namespace(self.settings, self.topics.namespace)
