"""Play the demo scenario through the real pipeline and read back what the worker stored.

The demo starts `loyalty worker` as a separate process, publishes each step of the scenario to
the contract's input topics, waits until the worker's read interface (``GET /customers/<id>``)
shows every message of the step in the customer's activity, reads the customers back from
MongoDB through that interface, stops the worker it started (SIGTERM: it finishes its batch and
publishes its outbox) and then reads the output messages of this run from the output topics.
Beside the worker it runs `loyalty consumers --only rewards,notifier`, waits until the SMTP sink
has received the emails this run requested and stops it too.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from admin.imports import Delivered, ImportOptions, run_import
from admin.sinks import KafkaSink
from bootstrap import kafka_producer
from demo.readback import OutputTail, View, wait_applied
from demo.scenario import Step, customers, scenario
from models.program import Program
from settings import Settings
from stack.consumers import ConsumersProcess
from stack.process import free_port
from stack.worker import WorkerProcess
from store.mongo import open_repository
from topics.admin import ensure_namespace_topics
from topics.names import Topics

STEP_SECONDS = 60.0
"""How long one step may take to be applied before the demo gives up and says what is missing."""
MAIL_SECONDS = 60.0
"""How long the demo waits for the emails this run requested to reach the SMTP sink."""


@dataclass
class StepResult:
    """One step as played: what was published and the activity it left, per customer."""

    step: Step
    activity: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class DemoResult:
    """Everything the demo prints."""

    run_id: str
    program: Program
    steps: list[StepResult]
    views: dict[str, View]
    """The customers as the read interface returns them, by demo key (alice, bob, carol)."""
    outputs: list[tuple[str, View]]
    """(topic, message) read from the output topics for this run's customers."""
    mail_files: list[Path]
    """The emails the SMTP sink received for this run's customers."""
    worker_log: Path
    consumers_log: Path

    def outputs_of(self, message_type: str) -> list[View]:
        """The output messages of one type, in the order they were read."""
        return [message for _, message in self.outputs if message.get("type") == message_type]


async def _publish(settings: Settings, topics: Topics, step: Step) -> None:
    producer = kafka_producer(settings)
    await producer.start()
    try:
        for topic, envelope in step.messages:
            await producer.send_and_wait(
                topics.name(topic),
                json.dumps(envelope).encode(),
                key=str(envelope["customer_id"]).encode(),
            )
    finally:
        await producer.stop()


def _step_activity(step: Step, views: dict[str, View]) -> list[tuple[str, dict[str, Any]]]:
    """Return the activity entries caused by the step's messages, oldest first."""
    ids = {str(envelope["id"]) for _, envelope in step.messages}
    lines = []
    for customer_id, view in views.items():
        for entry in reversed(view.get("activity", [])):  # the view lists newest first
            if entry["cause"]["id"] in ids:
                lines.append((customer_id, entry))
    return sorted(lines, key=lambda line: str(line[1]["at"]))


def _wanted(step: Step) -> dict[str, set[str]]:
    wanted: dict[str, set[str]] = {}
    for _, envelope in step.messages:
        wanted.setdefault(str(envelope["customer_id"]), set()).add(str(envelope["id"]))
    return wanted


class _RecordingSink:
    """Sends import commands through Kafka and keeps a copy of each, for the report."""

    def __init__(self, inner: KafkaSink, topics: Topics) -> None:
        self.inner = inner
        self.topics = topics
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def send(self, topic: str, key: bytes, value: bytes, delivered: Delivered) -> None:
        self.sent.append((self.topics.contract_name(topic), json.loads(value)))
        await self.inner.send(topic, key, value, delivered)

    async def flush(self) -> None:
        await self.inner.flush()


async def _import(settings: Settings, program: Program, step: Step, workdir: Path) -> Step:
    """Run the step's CSV through the admin import; return the step with what it published."""
    assert step.tier_import is not None
    spec = step.tier_import
    path = workdir / f"{spec.batch_id}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec.csv_text, encoding="utf-8")
    options = ImportOptions(
        kind="tiers",
        path=path,
        tier_names=tuple(tier.name for tier in program.tiers),
        batch_id=spec.batch_id,
        actor="demo-import",
        occurred_at=spec.at,
        namespace=settings.topic_namespace,
    )
    topics = Topics(settings.topic_namespace)
    repository = await open_repository(settings)
    producer = kafka_producer(settings)
    await producer.start()
    try:
        sink = _RecordingSink(KafkaSink(producer), topics)
        report = await run_import(options, repository, sink)
    finally:
        await producer.stop()
        await repository.close()
    notes = tuple(f"row {row}: {reason}" for row, reason in report.first_rejections)
    return replace(step, messages=tuple(sink.sent), notes=notes)


def _run_mail(mail_dir: Path, before: set[Path], recipients: set[str]) -> list[Path]:
    """Return the emails received since ``before`` that went to one of ``recipients``."""
    found = []
    for path in sorted(set(mail_dir.glob("*.eml")) - before) if mail_dir.exists() else []:
        head = path.read_bytes()[:4000].decode("utf-8", errors="replace")
        to = next(
            (line[15:].strip() for line in head.splitlines() if line.startswith("X-Envelope-To:")),
            "",
        )
        if to in recipients:
            found.append(path)
    return found


async def _wait_mail(
    mail_dir: Path, before: set[Path], recipients: set[str], expected: int
) -> list[Path]:
    """Wait until the sink has ``expected`` emails for the run (or MAIL_SECONDS passed)."""
    deadline = asyncio.get_running_loop().time() + MAIL_SECONDS
    while True:
        found = await asyncio.to_thread(_run_mail, mail_dir, before, recipients)
        if len(found) >= expected or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)


async def play(settings: Settings, program: Program) -> DemoResult:
    """Start a worker and the consumers, play the scenario, read everything back, stop them."""
    topics = Topics(settings.topic_namespace)
    await ensure_namespace_topics(
        settings.kafka_bootstrap,
        settings.topic_partitions,
        topics.namespace,
    )
    run_id = uuid.uuid4().hex[:6]
    now = datetime.now(UTC)
    mail_dir = settings.mail_path
    mail_before = set(mail_dir.glob("*.eml")) if mail_dir.exists() else set()
    log_dir = settings.stack_dir / "demo"
    # The demo's own processes listen on free ports: a worker already serving the default port
    # (another demo, a `loyalty worker`) would otherwise answer the demo's health check and
    # read-back in place of the one it started.
    own = settings.model_copy(
        update={
            "web_port": free_port(settings.web_host),
            "consumers_web_port": free_port(settings.web_host),
        }
    )
    worker = WorkerProcess(
        own, log_file=log_dir / f"worker-{run_id}.log", workdir=log_dir / "worker"
    )
    mailer = ConsumersProcess(
        own, log_file=log_dir / f"consumers-{run_id}.log", workdir=log_dir / "consumers"
    )
    tail = OutputTail(settings, topics.outputs)
    await tail.start()
    results: list[StepResult] = []
    views: dict[str, View] = {}
    mail: list[Path] = []
    try:
        worker.start()
        mailer.start()
        await worker.wait_ready()
        await mailer.wait_ready()
        for scripted in scenario(run_id, program, now):
            step = scripted
            if step.tier_import is not None:
                step = await _import(settings, program, step, log_dir)
            else:
                await _publish(settings, topics, step)
            applied = await wait_applied(worker.url, _wanted(step), within=STEP_SECONDS)
            views.update(applied)
            results.append(StepResult(step, _step_activity(step, applied)))
        # Read every customer once more: later steps changed some after their own step.
        final = {c.customer_id: set[str]() for c in customers(run_id)}
        views = await wait_applied(worker.url, final, within=STEP_SECONDS)
    finally:
        await asyncio.to_thread(worker.stop)
        try:
            outputs = await tail.read_to_end(views.keys()) if views else []
            requested = sum(1 for _, out in outputs if out.get("type") == "notification.requested")
            recipients = {c.email for c in customers(run_id)}
            mail = await _wait_mail(mail_dir, mail_before, recipients, requested)
        finally:
            await tail.stop()
            await asyncio.to_thread(mailer.stop)
    by_key = {c.key: views[c.customer_id] for c in customers(run_id) if c.customer_id in views}
    return DemoResult(
        run_id=run_id,
        program=program,
        steps=results,
        views=by_key,
        outputs=outputs,
        mail_files=mail,
        worker_log=worker.log_file,
        consumers_log=mailer.log_file,
    )
