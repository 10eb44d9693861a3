"""Play the demo scenario through the real Kafka topics and report what the rules made of it.

The stream workers, the MongoDB store and the email notifier are not built yet. Until they are,
the demo publishes each step to the contract's input topics, reads the same messages back from
Kafka, applies ``models.decide`` to them in order and keeps the customer states in memory. It
says so in its output instead of pretending a worker did it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bootstrap import kafka_consumer, kafka_producer
from demo.scenario import Step, scenario
from models.decide import Decision, decide
from models.outputs import OutputMessage
from models.program import Program
from models.state import CustomerState
from settings import Settings
from topics import names
from topics.admin import ensure_topics
from topics.codec import MessageError, parse_message

READ_BACK_SECONDS = 30.0


@dataclass
class StepResult:
    """What one step did: the decisions per message id, and the step's notes."""

    step: Step
    decisions: list[tuple[str, Decision]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class DemoResult:
    """Everything the demo prints."""

    run_id: str
    program: Program
    steps: list[StepResult]
    states: dict[str, CustomerState]
    mail_files: list[Path]

    @property
    def outputs(self) -> list[OutputMessage]:
        """Every output the rules produced, in order."""
        return [out for step in self.steps for _, dec in step.decisions for out in dec.outputs]


async def _positioned_consumer(settings: Settings, producer: AIOKafkaProducer) -> AIOKafkaConsumer:
    """Assign every input partition and pin the position at its current end before producing."""
    partitions = [
        TopicPartition(topic, p)
        for topic in names.INPUT_TOPICS
        for p in sorted(await producer.partitions_for(topic))  # waits for topic metadata
    ]
    consumer = kafka_consumer(settings, group_id=None)
    await consumer.start()
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for tp in partitions:  # resolves the lazy end offsets now, so nothing produced is skipped
        await consumer.position(tp)
    return consumer


async def _read_back(consumer: AIOKafkaConsumer, wanted: set[str]) -> dict[str, bytes]:
    """Read from the input topics until every wanted message id has come back."""
    found: dict[str, bytes] = {}
    async with asyncio.timeout(READ_BACK_SECONDS):
        while not wanted <= found.keys():
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    raw = record.value or b""
                    message_id = json.loads(raw).get("id")
                    if message_id in wanted:
                        found[message_id] = raw
    return found


def _apply(
    states: dict[str, CustomerState], raw: bytes, program: Program, now: datetime, code_key: str
) -> tuple[str, Decision]:
    message = parse_message(raw)
    decision = decide(states.get(message.customer_id), message, program, now, code_key=code_key)
    if decision.state is not None:
        states[message.customer_id] = decision.state
    return message.id, decision


async def play(settings: Settings, program: Program) -> DemoResult:
    """Publish the scenario step by step, read it back from Kafka and apply the rules."""
    code_key = settings.code_key()
    await ensure_topics(settings.kafka_bootstrap, settings.topic_partitions)
    run_id = uuid.uuid4().hex[:6]
    now = datetime.now(UTC)
    mail_dir = settings.mail_path
    mail_before = set(mail_dir.glob("*.eml")) if mail_dir.exists() else set()
    states: dict[str, CustomerState] = {}
    results: list[StepResult] = []
    producer = kafka_producer(settings)
    await producer.start()
    try:
        consumer = await _positioned_consumer(settings, producer)
    except BaseException:
        await producer.stop()
        raise
    try:
        for step in scenario(run_id, program, now):
            result = StepResult(step)
            for topic, envelope in step.messages:
                await producer.send_and_wait(
                    topic,
                    json.dumps(envelope).encode(),
                    key=envelope["customer_id"].encode(),
                )
            received = await _read_back(consumer, {env["id"] for _, env in step.messages})
            for _, envelope in step.messages:
                try:
                    result.decisions.append(
                        _apply(states, received[envelope["id"]], program, now, code_key)
                    )
                except MessageError as exc:
                    result.errors.append(f"{envelope['id']}: {exc}")
            results.append(result)
    finally:
        await producer.stop()
        await consumer.stop()
    mail_after = set(mail_dir.glob("*.eml")) if mail_dir.exists() else set()
    return DemoResult(run_id, program, results, states, sorted(mail_after - mail_before))


def describe_outputs(outputs: list[OutputMessage]) -> list[dict[str, Any]]:
    """Return the outputs as the JSON the output topics would carry."""
    return [json.loads(out.model_dump_json()) for out in outputs]
