"""Where messages go: the output topic of each output type, and the dead-letter record."""

from __future__ import annotations

import base64
from typing import Literal

from models.values import DomainModel, Identifier, NonNegativeInt
from topics import names

# By the type's family, so a new output type (reward.used, ...) needs no entry here.
_OUTPUT_TOPIC: dict[str, str] = {
    "tier": names.TIER_CHANGES,
    "reward": names.REWARDS,
    "notification": names.NOTIFICATIONS,
}


def output_topic(message_type: str, topics: names.Topics) -> str:
    """Return the namespaced topic an output message of this type is published on."""
    family = message_type.split(".", 1)[0]
    try:
        return topics.name(_OUTPUT_TOPIC[family])
    except KeyError:
        raise ValueError(f"no output topic for message type {message_type!r}") from None


# Input types by family, the same way: the contract lists each type under one input topic. The
# engine's own time events travel with the commands of their family (points.expire,
# points.confirm and reminder.due on adjustments, tier.expire on tier-commands).
_INPUT_TOPIC: dict[str, str] = {
    "customer": names.CUSTOMERS,
    "order": names.ORDERS,
    "points": names.ADJUSTMENTS,
    "stamps": names.ADJUSTMENTS,
    "reward": names.ADJUSTMENTS,
    "reminder": names.ADJUSTMENTS,
    "tier": names.TIER_COMMANDS,
}


def input_topic(message_type: str) -> str:
    """Return the contract's input topic a message of this type belongs on."""
    family = message_type.split(".", 1)[0]
    try:
        return _INPUT_TOPIC[family]
    except KeyError:
        raise ValueError(f"no input topic for message type {message_type!r}") from None


def route_problem(
    message_type: str, customer_id: str, source: str, key: bytes | None
) -> tuple[str, str] | None:
    """Return ``(code, message)`` when a valid message came the wrong way, else None.

    Per-customer order holds only within one topic-partition: a type on another topic than its
    own, or keyed by something else than its customer, could overtake what came before it (a
    refund before its order). ``source`` is the contract's name of the topic it was read from.
    """
    belongs = input_topic(message_type)
    if source != belongs:
        return (
            "wrong_topic",
            f"{message_type} belongs on {belongs}, not {source}; publish it there "
            "(each customer's messages stay in order only within one topic)",
        )
    if key != customer_id.encode("utf-8"):
        shown = "no key" if key is None else f"key {key.decode('utf-8', 'backslashreplace')!r}"
        return (
            "key_mismatch",
            f"message has {shown}; the Kafka key must be its customer_id {customer_id!r} in "
            "UTF-8, so that a customer's messages share a partition and stay in order",
        )
    return None


DEAD_LETTER_LIMIT = 900_000
"""Largest dead letter, in bytes of JSON: below the producer's and the broker's default message
size (1 MiB) with room for the key. A value that fits the broker can double or more once
written into a letter (each NUL escaped in six bytes, base64 a third more)."""
KEPT_VALUE_BYTES = 64 * 1024
"""Bytes of the value an oversized letter keeps (at most ~400 kB once escaped)."""
KEPT_TEXT = 2000
"""Characters of the key and error message an oversized letter keeps."""


class DeadLetter(DomainModel):
    """A rejected input as written to loyalty.dead-letter; ``id`` is topic:partition:offset.

    ``value`` is the raw value as text; when it is not UTF-8, it is base64 and
    ``value_encoding`` says so (escaping would lose bytes). A letter that would not fit in a
    Kafka message keeps the value's first ``KEPT_VALUE_BYTES`` only: ``value_truncated`` is
    then true and ``value_bytes`` the whole value's size; the whole value stays at
    topic/partition/offset for as long as that topic keeps it.
    """

    id: Identifier
    topic: str
    partition: NonNegativeInt
    offset: NonNegativeInt
    key: str | None
    value: str
    value_encoding: Literal["base64"] | None = None
    error_code: str
    error_message: str
    value_truncated: bool = False
    value_bytes: NonNegativeInt | None = None

    @classmethod
    def for_record(
        cls,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        error_code: str,
        error_message: str,
    ) -> DeadLetter:
        """Build the record for a raw Kafka record, keeping every byte of its value if it fits."""
        text, encoding = _text(value)
        letter = cls(
            id=f"{topic}:{partition}:{offset}",
            topic=topic,
            partition=partition,
            offset=offset,
            key=None if key is None else key.decode("utf-8", errors="backslashreplace"),
            value=text,
            value_encoding=encoding,
            error_code=error_code,
            error_message=error_message,
        )
        if len(letter.__pydantic_serializer__.to_json(letter)) <= DEAD_LETTER_LIMIT:
            return letter
        assert value is not None  # an empty value always fits
        kept, kept_encoding = _text(_utf8_prefix(value, KEPT_VALUE_BYTES))
        return letter.model_copy(
            update={
                "key": _shorten(letter.key),
                "value": kept,
                "value_encoding": kept_encoding,
                "error_message": _shorten(error_message),
                "value_truncated": True,
                "value_bytes": len(value),
            }
        )

    def raw_value(self) -> bytes:
        """Return the original value's bytes (for replaying a corrected message).

        Raises ``ValueError`` for a truncated letter: read the record at topic/partition/offset.
        """
        if self.value_truncated:
            raise ValueError(
                f"this dead letter keeps only the start of a {self.value_bytes}-byte value; read "
                f"the whole value at {self.topic} partition {self.partition} offset {self.offset}"
            )
        if self.value_encoding == "base64":
            return base64.b64decode(self.value)
        return self.value.encode("utf-8")


def _text(value: bytes | None) -> tuple[str, Literal["base64"] | None]:
    if value is None:
        return "", None
    try:
        return value.decode("utf-8"), None
    except UnicodeDecodeError:
        return base64.b64encode(value).decode("ascii"), "base64"


def _utf8_prefix(value: bytes, size: int) -> bytes:
    """Return at most ``size`` bytes of ``value``, not cutting a UTF-8 character in two."""
    prefix = value[:size]
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return prefix  # kept as base64 either way
    return prefix.decode("utf-8", errors="ignore").encode("utf-8")


def _shorten(text: str | None) -> str | None:
    if text is None or len(text) <= KEPT_TEXT:
        return text
    return f"{text[:KEPT_TEXT]}... ({len(text) - KEPT_TEXT} more characters)"
