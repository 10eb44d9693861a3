"""The hostile-message strategies through the pure decode and rules, no Kafka.

Each generated message says what must become of it (tests/hostile_messages.py); here the
decoder, the dead-letter record and ``decide`` must agree, message by message. The same
strategies feed 10,000 messages to a real worker in tests/integration/test_hostile_volume.py.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.decide import decide
from models.state import CustomerState
from program_file import load_program
from tests.hostile_messages import (
    Hostile,
    Population,
    applied,
    envelope,
    extremes,
    refused,
    tier_command,
)
from tests.hostile_mutations import malformed
from topics.codec import parse_message, to_json
from topics.names import Topics
from topics.routing import DEAD_LETTER_LIMIT
from workers.fold import dead_letter, decode

FAST = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
JOINED = NOW - timedelta(days=30)
"""Before any message the strategies date (at most a week before ``NOW``)."""
PEOPLE = Population([f"c-{n}" for n in range(5)], ["nobody-1", "nobody-2"], NOW)
PROGRAM = load_program(Path(__file__).parents[2] / "program.example.yaml")
TOPICS = Topics("ns.")
CODE_KEY = "unit-test-reward-code-key"


def _existing(customer_id: str) -> CustomerState:
    upsert = envelope(
        "customer.upserted", customer_id, f"seed-{customer_id}", JOINED, {"email": "x@example.com"}
    )
    state = decide(None, parse_message(upsert), PROGRAM, NOW, code_key=CODE_KEY).state
    assert state is not None
    return state


def _decoded(message: Hostile):  # type: ignore[no-untyped-def]
    return decode(
        TOPICS.name(message.topic), 3, 42, message.key.encode(), message.value, topics=TOPICS
    )


@FAST
@given(malformed(PEOPLE, "m-000001"))
def test_every_malformed_message_is_refused_with_its_code(message: Hostile) -> None:
    record = _decoded(message)
    assert record.message is None, (message.label, message.value)
    assert record.error is not None
    assert record.error.code == message.code, (message.label, record.error.message)
    assert record.error.message


@FAST
@given(malformed(PEOPLE, "m-000001"))
def test_the_dead_letter_of_a_malformed_message_fits_a_kafka_message(message: Hostile) -> None:
    record = _decoded(message)
    assert record.error is not None
    letter = dead_letter(record, record.error.code, record.error.message)
    assert len(to_json(letter)) <= DEAD_LETTER_LIMIT
    assert (letter.topic, letter.partition, letter.offset) == (TOPICS.name(message.topic), 3, 42)
    assert letter.error_code == message.code
    if not letter.value_truncated:
        assert letter.raw_value() == (message.value or b"")
    else:
        assert letter.value_bytes == len(message.value or b"")


@FAST
@given(st.sampled_from(PEOPLE.existing).flatmap(lambda c: tier_command(PEOPLE, c, "t-000001")))
def test_valid_hostile_messages_are_applied(message: Hostile) -> None:
    _applies(message)


@FAST
@given(applied(PEOPLE, "a-000001"))
def test_valid_messages_with_hostile_text_are_applied_verbatim(message: Hostile) -> None:
    decision = _applies(message)
    data = message.data or {}
    state = decision.state
    assert state is not None
    if message.label == "customer.upserted":
        assert (state.first_name, state.last_name) == (data["first_name"], data["last_name"])
    notes = {(e.internal_note, e.customer_note) for e in decision.activity}
    if message.label == "points.adjust":
        assert (data["internal_note"], data["customer_note"]) in notes


def _applies(message: Hostile):  # type: ignore[no-untyped-def]
    assert message.value is not None
    parsed = parse_message(message.value)
    assert message.customer_id is not None
    decision = decide(_existing(message.customer_id), parsed, PROGRAM, NOW, code_key=CODE_KEY)
    assert decision.rejection is None, decision.rejection
    assert not decision.duplicate
    return decision


@FAST
@given(refused(PEOPLE, "r-000001"))
def test_valid_messages_the_rules_refuse_carry_their_code(message: Hostile) -> None:
    assert message.value is not None
    parsed = parse_message(message.value)
    if message.code == "email_taken":
        return  # decided by the fold against the store's email owners, not by the rules
    state = _existing(message.customer_id) if message.customer_id is not None else None
    decision = decide(state, parsed, PROGRAM, NOW, code_key=CODE_KEY)
    assert decision.rejection is not None
    assert decision.rejection.code == message.code, decision.rejection
    if message.customer_id is not None:
        assert [(e.kind, e.details["code"]) for e in decision.activity] == [
            ("rejected", message.code)
        ]
    else:
        assert decision.state is None


def test_the_tombstone_and_empty_value_are_json_errors() -> None:
    record = decode("ns.loyalty.orders", 0, 1, None, None, topics=TOPICS)
    assert record.error is not None
    assert record.error.code == "invalid_json"


def test_dead_letters_of_messages_at_the_size_limit_fit_a_kafka_message() -> None:
    for message in extremes(PEOPLE):
        record = _decoded(message)
        assert record.error is not None
        assert record.error.code == message.code, message.label
        letter = dead_letter(record, record.error.code, record.error.message)
        assert len(to_json(letter)) <= DEAD_LETTER_LIMIT, message.label
        assert letter.value_truncated, message.label
        assert letter.value_bytes == len(message.value or b"")
        assert (message.value or b"").startswith(
            base64.b64decode(letter.value) if letter.value_encoding else letter.value.encode()
        )
