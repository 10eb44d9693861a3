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


class DeadLetter(DomainModel):
    """A rejected input as written to loyalty.dead-letter; ``id`` is topic:partition:offset.

    ``value`` is the raw value as text; when it is not UTF-8, it is base64 and
    ``value_encoding`` says so (escaping would lose bytes).
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
        """Build the record for a raw Kafka record, keeping every byte of its value."""
        text, encoding = _text(value)
        return cls(
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

    def raw_value(self) -> bytes:
        """Return the original value's bytes (for replaying a corrected message)."""
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
