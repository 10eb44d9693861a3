"""``loyalty bench notify``: emails/s from loyalty.notifications to an SMTP sink, vs raw aiosmtplib.

Both measurements run in the same invocation against the same sink (the project's own
``stack.smtp_sink``, started on a free port into a temporary folder, so the stack's mail folder
is not flooded): first the ceiling, aiosmtplib sending the same, already rendered messages one
after another over one reused connection; then the notifier consuming the same requests from a
fresh topic namespace and MongoDB database, through the whole path (Kafka, ledger, rendering,
SMTP pool), until every email is recorded as sent.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import os
import platform
import pstats
import socket
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Annotated, Any

import aiosmtplib
import typer

import bootstrap
from cli.console import make_console
from consumers.app import serving
from mail.context import Recipient, email_context
from mail.render import MailRenderer
from mail.smtp import build_message
from models.outputs import Cause, NotificationRequested, NotificationRequestedData
from program_file import load_program
from settings import Settings, get_settings
from stack.kafka import KafkaService
from stack.mongo import MongoService
from stack.process import port_open, read_pid, spawn, stop, wait_for
from topics.admin import ensure_namespace_topics
from topics.names import Topics

console = make_console()
TARGET = 0.7

TEMPLATE_DATA: dict[str, Any] = {
    "from_tier": "Silver",
    "to_tier": "Gold",
    "direction": "up",
    "benefits": ["Free shipping", "Early access to sales"],
    "rewards": [{"reward_id": "welcome-gold", "reward_name": "10 EUR off", "code": "GOLD4K7M2Q"}],
}


@dataclass(frozen=True)
class NotifyResult:
    """The two rates of one run."""

    emails: int
    raw_per_second: float
    notifier_per_second: float
    raw_cpu: dict[str, float]
    notifier_cpu: dict[str, float]

    @property
    def ratio(self) -> float:
        """The notifier's rate as a share of the raw ceiling."""
        return self.notifier_per_second / self.raw_per_second


class CpuMeter:
    """CPU seconds used by the processes that share the machine during a measurement."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid is not None}
        self._start: dict[str, float] = {}

    @staticmethod
    def _seconds(pid: int) -> float:
        # Fields 14 and 15 of /proc/<pid>/stat: user and system time in clock ticks.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def start(self) -> None:
        """Note the CPU time used so far."""
        self._start = {name: self._seconds(pid) for name, pid in self.pids.items()}

    def per_email(self, emails: int) -> dict[str, float]:
        """Return milliseconds of CPU per email since ``start``, per process."""
        return {
            name: (self._seconds(pid) - self._start[name]) * 1000 / emails
            for name, pid in self.pids.items()
        }


def _requests(count: int, run: str) -> list[NotificationRequested]:
    now = datetime.now(UTC)
    return [
        NotificationRequested(
            id=f"bench-{run}-{n}",
            customer_id=f"bench-{run}-{n}",
            occurred_at=now,
            data=NotificationRequestedData(
                kind="tier_upgraded",
                email=f"member{n}@bench.example",
                first_name=f"Member {n}",
                cause=Cause(type="order.paid", id=f"bench-{run}-order-{n}"),
                template_data=TEMPLATE_DATA,
            ),
        )
        for n in range(count)
    ]


def _messages(settings: Settings, requests: list[NotificationRequested]) -> list[Message]:
    program = load_program(settings.program_file)
    renderer = MailRenderer(settings.mail_templates_dir)
    messages = []
    for request in requests:
        data = request.data
        recipient = Recipient(request.customer_id, data.email, data.first_name)
        context = email_context(
            kind=data.kind,
            notification_id=request.id,
            recipient=recipient,
            template_data=data.template_data,
            program_name=program.name,
            currency=program.currency,
        )
        messages.append(
            build_message(
                renderer.render(data.kind, context),
                sender=settings.mail_from,
                recipient=data.email,
                notification_id=request.id,
                sent_at=request.occurred_at,
            )
        )
    return messages


async def _raw_rate(port: int, messages: list[Message]) -> float:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30, start_tls=False)
    await client.connect()
    try:
        started = time.perf_counter()
        for message in messages:
            await client.send_message(message)
        return len(messages) / (time.perf_counter() - started)
    finally:
        await client.quit()


async def _publish(settings: Settings, topic: str, requests: list[NotificationRequested]) -> None:
    producer = bootstrap.kafka_producer(settings, linger_ms=5)
    await producer.start()
    try:
        sends = [
            await producer.send(
                topic,
                request.model_dump_json().encode(),
                key=request.customer_id.encode(),
            )
            for request in requests
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def _notifier_rate(settings: Settings, count: int) -> float:
    async with serving(settings, ["notifier"], web=False) as running:
        # The clock starts once the group has given the notifier its partitions: joining a
        # group is a one-off start-up cost, not a rate.
        started: float | None = None
        sent = 0.0
        while started is None or sent < count:
            await asyncio.sleep(0.01)
            if started is None and running.loops[0].kafka.assignment():
                started = time.perf_counter()
            value = running.metrics.registry.get_sample_value(
                "loyalty_notifier_emails_total", {"kind": "tier_upgraded", "result": "sent"}
            )
            sent = value or 0.0
            if running.tasks and all(task.done() for task in running.tasks):
                raise RuntimeError("the notifier stopped before sending every email")
        return count / (time.perf_counter() - started)


async def _drop(settings: Settings) -> None:
    client = bootstrap.mongo_client(settings)
    try:
        await client.drop_database(settings.mongo_database)
    finally:
        await client.close()


async def _round(
    base: Settings, port: int, emails: int, profiler: cProfile.Profile | None, meter: CpuMeter
) -> NotifyResult:
    """One raw measurement, then the notifier on a fresh namespace and database."""
    run = uuid.uuid4().hex[:8]
    settings = base.model_copy(
        update={
            "smtp_port": port,
            "topic_namespace": f"bench-{run}-",
            "mongo_database": f"bench_notify_{run}",
        }
    )
    requests = _requests(emails, run)
    messages = _messages(settings, requests)
    meter.start()
    raw = await _raw_rate(port, messages)
    raw_cpu = meter.per_email(emails)
    topics = Topics(settings.topic_namespace)
    try:
        await ensure_namespace_topics(
            settings.kafka_bootstrap,
            settings.topic_partitions,
            topics.namespace,
        )
        await _publish(settings, topics.notifications, requests)
        if profiler is not None:
            profiler.enable()
        meter.start()
        try:
            rate = await _notifier_rate(settings, emails)
        finally:
            if profiler is not None:
                profiler.disable()
        notifier_cpu = meter.per_email(emails)
    finally:
        await _drop(settings)
    return NotifyResult(emails, raw, rate, raw_cpu, notifier_cpu)


async def measure_notify(
    base: Settings, emails: int, rounds: int, profiler: cProfile.Profile | None
) -> list[NotifyResult]:
    """Start a sink; alternate the raw ceiling and the notifier ``rounds`` times."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    with tempfile.TemporaryDirectory(prefix="bench-notify-") as tmp:
        home = Path(tmp)
        pid_file = home / "sink.pid"
        command = [sys.executable, "-m", "stack.smtp_sink", "--port", str(port)]
        spawn(
            [*command, "--mail-dir", str(home / "mail")],
            pid_file=pid_file,
            log_file=home / "sink.log",
            cwd=Path.cwd(),
        )
        try:
            if not wait_for(lambda: port_open(port), timeout=20):
                raise RuntimeError(f"the SMTP sink did not start; see {home / 'sink.log'}")
            meter = CpuMeter(
                {
                    "bench process": os.getpid(),
                    "smtp sink": read_pid(pid_file),
                    "mongodb": read_pid(MongoService(base).pid_file),
                    "kafka": read_pid(KafkaService(base).pid_file),
                }
            )
            results = []
            for number in range(1, rounds + 1):
                result = await _round(base, port, emails, profiler, meter)
                console.print(
                    f"round {number}: raw {result.raw_per_second:,.0f}/s, notifier "
                    f"{result.notifier_per_second:,.0f}/s, ratio {result.ratio:.2f}; CPU ms per "
                    f"email, raw: {_cpu_text(result.raw_cpu)}; notifier: "
                    f"{_cpu_text(result.notifier_cpu)}"
                )
                results.append(result)
            return results
        finally:
            stop(pid_file)


def _cpu_text(cpu: dict[str, float]) -> str:
    return ", ".join(f"{name} {ms:.2f}" for name, ms in cpu.items())


def notify(
    emails: Annotated[int, typer.Option(min=10, help="Emails sent in each measurement.")] = 2000,
    connections: Annotated[
        int, typer.Option(min=1, max=64, help="SMTP connections of the notifier's pool.")
    ] = 4,
    rounds: Annotated[
        int, typer.Option(min=1, max=20, help="Raw/notifier pairs, alternated; medians count.")
    ] = 3,
    profile: Annotated[bool, typer.Option(help="Profile the notifier and print the top.")] = False,
) -> None:
    """Emails/s from loyalty.notifications to an SMTP sink, vs raw aiosmtplib on one connection."""
    # Warnings only: a log line per email would measure the terminal, not the notifier.
    settings = get_settings().model_copy(
        update={"log_level": "WARNING", "smtp_connections": connections}
    )
    bootstrap.configure_logging(settings)
    profiler = cProfile.Profile() if profile else None
    console.print(f"machine: {machine()}")
    console.print(
        f"{emails} emails per measurement, {rounds} rounds; raw aiosmtplib over one reused "
        f"connection, then the notifier with {connections} connections"
    )
    results = asyncio.run(measure_notify(settings, emails, rounds, profiler))
    raw = statistics.median(r.raw_per_second for r in results)
    rate = statistics.median(r.notifier_per_second for r in results)
    ratio = statistics.median(r.ratio for r in results)
    console.print(f"raw aiosmtplib, one connection (median): {raw:,.0f} emails/s")
    console.print(f"notifier, topic to sink (median):        {rate:,.0f} emails/s")
    verdict = "meets" if ratio >= TARGET else "misses"
    console.print(f"median ratio {ratio:.2f} ({verdict} the target of at least {TARGET:.2f})")
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        console.print(out.getvalue(), markup=False, highlight=False)


def machine() -> str:
    """One line about where the numbers were taken."""
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{python}, {os.cpu_count()} CPUs, {platform.machine()}"
