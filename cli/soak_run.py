"""One run of ``loyalty bench soak``: steady mixed load for N minutes, sampled, then drained.

1. refuse unless the local stack's Kafka and MongoDB-compatible server answer;
2. start an SMTP sink of its own (free port, its own mail directory), `loyalty worker` and
   `loyalty consumers --only rewards,notifier` as separate processes on free web ports, under
   this run's topic namespace and database;
3. produce ``cli.soak_load.MixedLoad`` at a steady rate for the given minutes, and every
   ``sample_seconds`` (from the start) sample the consumer lag of each group, the RSS of each
   process, the outbox backlog, the events applied and the emails sent;
4. stop producing, time the drain (every lag and the outbox back to zero), stop what it started
   by PID, check those processes are gone, drop the run's topics, database and mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from admin.benchmark import delete_namespace, drop_database
from bootstrap import kafka_consumer, kafka_producer, mongo_client
from cli.bench_watch import steady_rate
from cli.soak_load import MixedLoad
from cli.soak_report import Sample, SoakReport
from consumers.loop import ConsumeLoop
from settings import Settings
from stack.consumers import ConsumersProcess
from stack.kafka import KafkaService
from stack.mongo import MongoService
from stack.process import free_port, port_open, read_pid, spawn, stop, wait_for
from stack.worker import WorkerProcess
from topics.admin import ensure_namespace_topics
from topics.names import Topics
from workers.app import group_id as worker_group

Progress = Callable[[str], None]

TICK_SECONDS = 0.05
"""How often the producer catches up with its schedule."""
SMTP_START_SECONDS = 30.0


class SoakError(Exception):
    """The soak cannot run (the stack is down, a process did not start)."""


@dataclass(frozen=True)
class Options:
    """What one run does."""

    minutes: float
    rate: float
    rate_source: str
    sample_seconds: float = 60.0
    warmup_minutes: float = 5.0
    active_customers: int = 500
    drain_seconds: float = 600.0
    keep: bool = False


def rss_mb(pid: int | None) -> float | None:
    """Resident memory of a process in MB, None when it is gone."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def alive(pid: int) -> bool:
    """Whether a process with this PID still runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def metric_total(url: str, family_name: str, **labels: str) -> int:
    """Sum the ``_total`` samples of one counter family served at ``url`` whose labels match."""
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own process
        text = response.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != family_name:
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                total += sample.value
    return int(total)


@dataclass
class Soak:
    """One soak run against the local stack."""

    settings: Settings
    options: Options
    command: str
    machine: str
    progress: Progress
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    def __post_init__(self) -> None:
        self.topics = Topics(f"soak{self.run_id}.")
        self.home = self.settings.stack_dir.resolve() / "bench" / f"soak-{self.run_id}"
        self.mail_dir = self.home / "mail"
        self.smtp_pid_file = self.home / "smtp.pid"
        self.own = self.settings.model_copy(
            update={
                "topic_namespace": self.topics.namespace,
                "mongo_database": f"soak_{self.run_id}",
                "stack_dir": self.settings.stack_dir.resolve(),
                "web_port": free_port(self.settings.web_host),
                "consumers_web_port": free_port(self.settings.web_host),
                "smtp_host": "127.0.0.1",
                "smtp_port": free_port(),
            }
        )
        self.groups = {
            "worker": (worker_group(self.topics), self.topics.inputs),
            "rewards": (ConsumeLoop.group_id(self.topics, "rewards"), (self.topics.rewards,)),
            "notifier": (
                ConsumeLoop.group_id(self.topics, "notifier"),
                (self.topics.notifications,),
            ),
        }
        self.worker = WorkerProcess(
            self.own, log_file=self.home / "worker.log", workdir=self.home / "worker"
        )
        self.consumers = ConsumersProcess(
            self.own, log_file=self.home / "consumers.log", workdir=self.home / "consumers"
        )
        self.produced: Counter[str] = Counter()
        self.pids: dict[str, int | None] = {}
        """Every process whose RSS is sampled, by name."""
        self.started: dict[str, int] = {}
        """The processes this run started (and stops), by name."""
        self.lag_reader = LagReader(self.settings, self.groups)
        self.customers: Any = None

    def check_stack(self) -> dict[str, int | None]:
        """Return the shared servers' PIDs; raise SoakError unless Kafka and MongoDB answer."""
        kafka, mongo = KafkaService(self.settings), MongoService(self.settings)
        down = [
            f"{name} (port {port})"
            for name, port in (
                ("Kafka", self.settings.kafka_port),
                ("the MongoDB-compatible server", self.settings.mongo_port),
            )
            if not port_open(port)
        ]
        if down:
            raise SoakError(
                f"the local stack is not up: nothing answers for {' and '.join(down)}; "
                "start it with `loyalty stack up` (or point LOYALTY_STACK_DIR at a running one)"
            )
        return {"kafka": read_pid(kafka.pid_file), "mongodb": read_pid(mongo.pid_file)}

    def start_smtp(self) -> int:
        """Start this run's own SMTP sink; return its PID."""
        port = self.own.smtp_port
        pid = spawn(
            [
                sys.executable,
                "-m",
                "stack.smtp_sink",
                "--port",
                str(port),
                "--mail-dir",
                str(self.mail_dir),
            ],
            pid_file=self.smtp_pid_file,
            log_file=self.home / "smtp.log",
            cwd=self.home,
        )
        if not wait_for(lambda: port_open(port), timeout=SMTP_START_SECONDS):
            stop(self.smtp_pid_file)
            raise SoakError(f"the soak's SMTP sink did not answer on port {port}")
        return pid

    async def run(self) -> SoakReport:
        """Start everything, load, sample, drain, stop; return the report."""
        opts = self.options
        self.pids.update(self.check_stack())
        report = SoakReport(
            command=self.command,
            machine=self.machine,
            rate=opts.rate,
            rate_source=opts.rate_source,
            minutes=opts.minutes,
            warmup_minutes=opts.warmup_minutes,
            load_start=os.getloadavg()[0],
        )
        await ensure_namespace_topics(
            self.settings.kafka_bootstrap, self.settings.topic_partitions, self.topics.namespace
        )
        self.home.mkdir(parents=True, exist_ok=True)
        database = mongo_client(self.settings)
        self.customers = database[self.own.mongo_database]["customers"]
        try:
            await self.start_processes()
            await self.lag_reader.start()
            self.progress(
                f"run {self.run_id}: {opts.rate:.0f} messages/s for {opts.minutes:g} min; "
                f"sample every {opts.sample_seconds:g} s; logs in {self.home}"
            )
            report.samples = await self.load_and_sample()
            report.drain_seconds = await self.drain()
            report.final_lag = await self.lag_reader.lag()
            report.final_outbox = await outbox_backlog(self.customers)
            report.final_applied, report.final_emails = await self.counts()
        finally:
            # Stop the processes first: whatever fails below must not leave them running.
            report.stopped = self.stop_processes()
            report.load_end = os.getloadavg()[0]
            report.counts = dict(self.produced)
            try:
                await self.lag_reader.stop()
                await database.close()
            finally:
                if not opts.keep:
                    await self.clean_up()
        return report

    async def calibrate(self, messages: int) -> float:
        """The maximum rate of this load: events/s (10% to 90%) draining a pre-loaded backlog.

        ``messages`` of the same mixed load are published before the worker and the consumers
        start; the rate is read from the worker's own counter, as ``loyalty bench pipeline``
        reads it.
        """
        self.check_stack()
        await ensure_namespace_topics(
            self.settings.kafka_bootstrap, self.settings.topic_partitions, self.topics.namespace
        )
        self.home.mkdir(parents=True, exist_ok=True)
        try:
            self.progress(f"calibration {self.run_id}: pre-loading {messages} messages")
            await self.preload(messages)
            await self.start_processes()
            self.progress("calibration: the worker drains them")
            samples: list[tuple[float, float]] = []
            deadline = time.monotonic() + self.options.drain_seconds
            while True:
                applied, _ = await self.counts()
                samples.append((time.monotonic(), applied))
                if applied >= messages:
                    return steady_rate(samples, 0, messages)
                self._check_alive()
                if time.monotonic() > deadline:
                    raise SoakError(
                        f"calibration: the worker finished {applied} of {messages} messages "
                        f"within {self.options.drain_seconds:.0f} s"
                    )
                await asyncio.sleep(0.5)
        finally:
            self.stop_processes()
            if not self.options.keep:
                await self.clean_up()

    async def preload(self, messages: int) -> None:
        """Publish ``messages`` of the mixed load at once (customers settle as at full speed)."""
        load = MixedLoad(
            self.run_id, _currency(self.settings), active=self.options.active_customers
        )
        producer = kafka_producer(self.settings, linger_ms=20)
        await producer.start()
        try:
            at = datetime.now(UTC)
            pending = []
            for n in range(messages):
                topic, envelope = load.next(n / self.options.rate, at)
                pending.append(await self._send(producer, topic, envelope))
            for future in pending:
                await future
        finally:
            await producer.stop()

    async def _send(self, producer: Any, topic: str, envelope: dict[str, Any]) -> Any:
        """Queue one message on this run's topic, keyed by its customer; return its future."""
        return await producer.send(
            self.topics.name(topic),
            json.dumps(envelope).encode(),
            key=str(envelope["customer_id"]).encode(),
        )

    def stop_processes(self) -> dict[str, bool]:
        """Stop what this run started, by PID; return whether each one is gone.

        Blocking on purpose: it runs in ``finally`` blocks, where a cancelled task (Ctrl-C)
        could not await a thread.
        """
        try:
            self.worker.stop()
        finally:
            try:
                self.consumers.stop()
            finally:
                stop(self.smtp_pid_file)
        return {name: not alive(pid) for name, pid in self.started.items()}

    async def start_processes(self) -> None:
        """Start the SMTP sink, the worker and the consumers; wait until they answer."""
        self.started["smtp"] = self.pids["smtp"] = self.start_smtp()
        for name, process in (("worker", self.worker), ("consumers", self.consumers)):
            process.start()
            assert process.pid is not None
            self.started[name] = self.pids[name] = process.pid
        await self.worker.wait_ready()
        await self.consumers.wait_ready()

    async def load_and_sample(self) -> list[Sample]:
        """Produce for the soak's minutes; sample at the start and every ``sample_seconds``."""
        opts = self.options
        samples = []
        begin = time.monotonic()
        producing = asyncio.create_task(self.produce(begin))
        try:
            n = 0
            while (due := begin + n * opts.sample_seconds) <= begin + opts.minutes * 60 + 0.001:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                self._check_alive()
                if producing.done():
                    producing.result()  # a producer that failed fails the soak now
                samples.append(await self.sample((time.monotonic() - begin) / 60))
                n += 1
            await producing
        finally:
            producing.cancel()
        return samples

    async def sample(self, minute: float) -> Sample:
        """Take one sample now."""
        produced = sum(self.produced.values())
        applied, emails = await self.counts()
        taken = Sample(
            minute=minute,
            produced=produced,
            applied=applied,
            emails=emails,
            lag=await self.lag_reader.lag(),
            rss_mb={name: mb for name, pid in self.pids.items() if (mb := rss_mb(pid)) is not None},
            outbox=await outbox_backlog(self.customers),
            load=os.getloadavg()[0],
        )
        self.progress(_line(taken))
        return taken

    async def counts(self) -> tuple[int, int]:
        """Input messages the worker finished and emails the notifier sent, from their metrics."""
        applied = await asyncio.to_thread(
            metric_total, f"{self.worker.url}/metrics", "loyalty_events"
        )
        emails = await asyncio.to_thread(
            metric_total, f"{self.consumers.url}/metrics", "loyalty_notifier_emails", result="sent"
        )
        return applied, emails

    def _check_alive(self) -> None:
        for process, name in ((self.worker, "worker"), (self.consumers, "consumers")):
            if not process.running:
                raise SoakError(
                    f"the {name} exited during the soak; log {process.log_file}:\n{process.tail()}"
                )

    async def produce(self, begin: float) -> None:
        """Publish the mixed load at the steady rate until the soak's minutes are over."""
        opts = self.options
        load = MixedLoad(self.run_id, _currency(self.settings), active=opts.active_customers)
        producer = kafka_producer(self.settings, linger_ms=5)
        await producer.start()
        end = begin + opts.minutes * 60
        sent = 0
        try:
            while (now := time.monotonic()) < end:
                due = int((now - begin) * opts.rate)
                pending = []
                at = datetime.now(UTC)
                while sent < due:
                    topic, envelope = load.next(now - begin, at)
                    pending.append(await self._send(producer, topic, envelope))
                    self.produced[envelope["type"]] += 1
                    sent += 1
                for future in pending:
                    await future
                await asyncio.sleep(TICK_SECONDS)
        finally:
            await producer.stop()

    async def drain(self) -> float | None:
        """Seconds until every lag and the outbox are zero; None if that took too long."""
        started = time.monotonic()
        self.progress("load stopped; draining")
        while time.monotonic() - started < self.options.drain_seconds:
            self._check_alive()
            lag = await self.lag_reader.lag()
            if not any(lag.values()) and await outbox_backlog(self.customers) == 0:
                return time.monotonic() - started
            await asyncio.sleep(0.5)
        return None

    async def clean_up(self) -> None:
        """Drop this run's topics, database and mail (the logs stay)."""
        with contextlib.suppress(Exception):
            await delete_namespace(self.settings, self.topics.namespace)
        with contextlib.suppress(Exception):
            await drop_database(self.settings, self.own.mongo_database)
        shutil.rmtree(self.mail_dir, ignore_errors=True)
        for workdir in (self.worker.workdir, self.consumers.workdir):
            shutil.rmtree(workdir, ignore_errors=True)


class LagReader:
    """Consumer lag of each group: end offsets less the group's committed offsets."""

    def __init__(self, settings: Settings, groups: dict[str, tuple[str, tuple[str, ...]]]) -> None:
        self.settings = settings
        self.groups = groups
        self.partitions: dict[str, list[TopicPartition]] = {}
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        """Connect (inside the running loop), and look up the partitions of the groups' topics."""
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap)
        await self._admin.start()
        self._consumer = kafka_consumer(self.settings, group_id=None)
        await self._consumer.start()
        for name, (_, topics) in self.groups.items():
            described = await self._admin.describe_topics(list(topics))
            self.partitions[name] = sorted(
                TopicPartition(topic["topic"], part["partition"])
                for topic in described
                for part in topic["partitions"]
            )
            if not self.partitions[name]:
                raise SoakError(f"no partitions found for the topics of {name}: {topics}")

    async def stop(self) -> None:
        """Close the clients (if they were opened)."""
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
        if self._admin is not None:
            with contextlib.suppress(Exception):
                await self._admin.close()

    async def lag(self) -> dict[str, int]:
        """Lag by group name; a partition the group never committed counts from its start."""
        if self._admin is None or self._consumer is None:
            raise RuntimeError("LagReader.lag() before start()")
        out = {}
        for name, (group, _) in self.groups.items():
            parts = self.partitions[name]
            ends = await self._consumer.end_offsets(parts)
            starts = await self._consumer.beginning_offsets(parts)
            committed = await self._admin.list_consumer_group_offsets(group, partitions=parts)
            total = 0
            for tp in parts:
                meta = committed.get(tp)
                position = meta.offset if meta is not None and meta.offset >= 0 else starts[tp]
                total += max(0, ends[tp] - position)
            out[name] = total
        return out


async def outbox_backlog(customers: Any) -> int:
    """Outbox entries stored and not published yet (the sparse ``outbox.id`` index)."""
    total = 0
    async for doc in customers.find({"outbox.id": {"$exists": True}}, {"outbox.id": 1}):
        total += len(doc.get("outbox", ()))
    return total


def _currency(settings: Settings) -> str:
    from program_file import load_program  # noqa: PLC0415 - read once per run

    return load_program(settings.program_file).currency


def _line(sample: Sample) -> str:
    lag = " ".join(f"{k}={v}" for k, v in sample.lag.items())
    rss = " ".join(f"{k}={v:.0f}MB" for k, v in sample.rss_mb.items())
    return (
        f"min {sample.minute:5.1f}: produced {sample.produced} applied {sample.applied} "
        f"emails {sample.emails} lag {lag} outbox {sample.outbox} rss {rss} "
        f"load {sample.load:.1f}"
    )
