"""Dead-letter records keep every byte; outputs go to their family's topic; namespaces prefix."""

from __future__ import annotations

import base64
import json

import pytest

from topics.codec import to_json
from topics.names import ALL_TOPICS, INPUT_TOPICS, Topics
from topics.routing import DEAD_LETTER_LIMIT, DeadLetter, input_topic, output_topic, route_problem


def _record(value: bytes | None, key: bytes | None = b"cust-1") -> DeadLetter:
    return DeadLetter.for_record(
        topic="loyalty.orders",
        partition=2,
        offset=17,
        key=key,
        value=value,
        error_code="invalid_encoding",
        error_message="message is not UTF-8",
    )


def test_dead_letter_of_utf8_value_keeps_the_text() -> None:
    record = _record(b'{"type": "order.paid", "note": "caf\xc3\xa9"')
    assert record.id == "loyalty.orders:2:17"
    assert record.value == '{"type": "order.paid", "note": "café"'
    assert record.value_encoding is None
    out = json.loads(to_json(record))
    assert out["offset"] == 17
    assert out["key"] == "cust-1"
    assert out["value_encoding"] is None


def test_dead_letter_of_non_utf8_value_is_base64_and_round_trips() -> None:
    raw = b"\xff{\x00\xfe"
    record = _record(raw)
    assert record.value_encoding == "base64"
    assert base64.b64decode(record.value) == raw
    assert DeadLetter.model_validate_json(to_json(record)).raw_value() == raw


def test_dead_letter_without_value_or_key() -> None:
    record = _record(None, key=None)
    assert (record.value, record.key, record.value_encoding) == ("", None, None)


@pytest.mark.parametrize(
    ("kind", "topic"),
    [
        ("tier.changed", "loyalty.tier-changes"),
        ("reward.granted", "loyalty.rewards"),
        ("reward.used", "loyalty.rewards"),
        ("notification.requested", "loyalty.notifications"),
    ],
)
def test_outputs_go_to_their_family_topic(kind: str, topic: str) -> None:
    assert output_topic(kind, Topics()) == topic
    assert output_topic(kind, Topics("t1.")) == "t1." + topic


def test_unknown_output_family_is_refused() -> None:
    with pytest.raises(ValueError, match="no output topic"):
        output_topic("order.paid", Topics())


def test_namespace_prefixes_every_topic_and_inverts() -> None:
    names = Topics("test-42.")
    assert names.all == tuple("test-42." + t for t in ALL_TOPICS)
    assert names.inputs == tuple("test-42." + t for t in INPUT_TOPICS)
    assert names.contract_name(names.orders) == "loyalty.orders"
    assert Topics().all == ALL_TOPICS


@pytest.mark.parametrize("namespace", ["a b", "x/", "ü", "x" * 101])
def test_namespace_must_fit_a_topic_name(namespace: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        Topics(namespace)


def test_a_dead_letter_that_would_outgrow_a_kafka_message_keeps_the_start_of_the_value() -> None:
    raw = b'{"data": "' + b"\x00" * 300_000 + b'"}'  # each NUL takes six bytes once escaped
    record = _record(raw, key=b"k" * 50_000)
    assert len(to_json(record)) <= DEAD_LETTER_LIMIT
    assert (record.value_truncated, record.value_bytes) == (True, len(raw))
    assert raw.startswith(record.value.encode())
    assert record.key is not None
    assert len(record.key) < 2100
    with pytest.raises(ValueError, match=r"loyalty\.orders partition 2 offset 17"):
        record.raw_value()


def test_a_dead_letter_that_fits_is_not_marked_truncated() -> None:
    record = _record(b"x" * 500_000)
    assert (record.value_truncated, record.value_bytes) == (False, None)
    assert record.raw_value() == b"x" * 500_000


def test_every_input_type_has_one_input_topic() -> None:
    from topics.codec import INPUT_TYPES  # noqa: PLC0415 - the registry under test

    topics = {kind: input_topic(kind) for kind in INPUT_TYPES}
    assert set(topics.values()) == set(INPUT_TOPICS)
    assert topics["order.refunded"] == "loyalty.orders"
    assert topics["reward.redeem"] == "loyalty.adjustments"
    # The scheduler's time events go with the commands of their family.
    assert topics["points.expire"] == topics["reminder.due"] == "loyalty.adjustments"
    assert topics["tier.expire"] == "loyalty.tier-commands"
    with pytest.raises(ValueError, match="no input topic"):
        input_topic("coupon.issued")


def test_a_message_on_its_own_topic_keyed_by_its_customer_passes() -> None:
    assert route_problem("order.paid", "c-ü", "loyalty.orders", "c-ü".encode()) is None


def test_another_topic_or_key_is_refused_saying_where_it_belongs() -> None:
    code, message = route_problem("order.refunded", "c-1", "loyalty.adjustments", b"c-1") or (
        "",
        "",
    )
    assert code == "wrong_topic"
    assert "order.refunded belongs on loyalty.orders, not loyalty.adjustments" in message
    code, message = route_problem("order.paid", "c-1", "loyalty.orders", b"o-77") or ("", "")
    assert code == "key_mismatch"
    assert "key 'o-77'" in message
    assert "customer_id 'c-1'" in message
    code, message = route_problem("order.paid", "c-1", "loyalty.orders", None) or ("", "")
    assert (code, message.startswith("message has no key")) == ("key_mismatch", True)
