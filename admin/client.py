"""Typed admin commands: build each command of the contract and publish it to Kafka.

What the ``loyalty`` CLI uses and what an admin system imports::

    async with AdminClient.connect(settings) as client:
        sent = await client.adjust_points("cust-42", 500, internal_note="Ticket 4711")
        print(sent.id)   # the idempotency key; publish it again to retry safely

Every builder validates the command with the contract's own models (``MessageError`` says what
to fix) and returns a ``Command``; an id given by the caller makes a retry a no-op.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from aiokafka import AIOKafkaProducer

from bootstrap import kafka_producer
from models.messages import GROUP_PREFIX
from models.values import format_timestamp
from settings import Settings
from topics import names
from topics.codec import parse_message
from topics.names import Topics

ADMIN_SOURCE = "admin"
ManageAction = Literal["upgrade", "downgrade", "renew"]
ManageStrategy = Literal["specific", "rules"]


@dataclass(frozen=True)
class Command:
    """One validated command: the contract topic it goes to and its JSON envelope."""

    topic: str
    envelope: dict[str, Any]

    @property
    def id(self) -> str:
        """Return the command's id, its idempotency key."""
        return str(self.envelope["id"])

    @property
    def customer_id(self) -> str:
        """Return the customer (or ``group:<id>``) the command is keyed by."""
        return str(self.envelope["customer_id"])

    @property
    def type(self) -> str:
        """Return the message type."""
        return str(self.envelope["type"])

    def value(self) -> bytes:
        """Return the message value as published."""
        return json.dumps(self.envelope, ensure_ascii=False, separators=(",", ":")).encode()


def new_id(kind: str) -> str:
    """Return a fresh command id (``<type>:<uuid4>``)."""
    return f"{kind}:{uuid.uuid4().hex}"


def _command(
    topic: str,
    kind: str,
    customer_id: str,
    data: dict[str, Any],
    *,
    command_id: str | None,
    actor: str | None,
    occurred_at: datetime | None,
) -> Command:
    envelope: dict[str, Any] = {
        "id": command_id or new_id(kind),
        "type": kind,
        "customer_id": customer_id,
        "occurred_at": format_timestamp(occurred_at or datetime.now(UTC)),
        "source": ADMIN_SOURCE,
        "data": {key: value for key, value in data.items() if value is not None},
    }
    if actor:
        envelope["actor"] = actor
    parse_message(envelope)  # raises MessageError naming the field to fix
    return Command(topic, envelope)


def adjust_points(
    customer_id: str,
    delta: int,
    *,
    internal_note: str | None = None,
    customer_note: str | None = None,
    expires_in_months: int | None = None,
    command_id: str | None = None,
    actor: str | None = None,
    occurred_at: datetime | None = None,
) -> Command:
    """Build ``points.adjust``: add (positive) or remove (negative) points."""
    data = {
        "delta": delta,
        "internal_note": internal_note,
        "customer_note": customer_note,
        "expires_in_months": expires_in_months,
    }
    return _command(
        names.ADJUSTMENTS,
        "points.adjust",
        customer_id,
        data,
        command_id=command_id,
        actor=actor,
        occurred_at=occurred_at,
    )


def adjust_stamps(
    customer_id: str,
    delta: int,
    *,
    internal_note: str | None = None,
    customer_note: str | None = None,
    command_id: str | None = None,
    actor: str | None = None,
    occurred_at: datetime | None = None,
) -> Command:
    """Build ``stamps.adjust``: add or remove stamps (never below zero)."""
    data = {"delta": delta, "internal_note": internal_note, "customer_note": customer_note}
    return _command(
        names.ADJUSTMENTS,
        "stamps.adjust",
        customer_id,
        data,
        command_id=command_id,
        actor=actor,
        occurred_at=occurred_at,
    )


def redeem_reward(
    customer_id: str,
    reward_id: str,
    *,
    points: int | None = None,
    internal_note: str | None = None,
    command_id: str | None = None,
    actor: str | None = None,
    occurred_at: datetime | None = None,
) -> Command:
    """Build ``reward.redeem``: spend points or stamps on a catalog reward.

    ``points``: how many points to spend on a reward priced as a rate (``points_rate``).
    """
    data: dict[str, Any] = {"reward_id": reward_id, "internal_note": internal_note}
    if points is not None:
        data["points"] = points
    return _command(
        names.ADJUSTMENTS,
        "reward.redeem",
        customer_id,
        data,
        command_id=command_id,
        actor=actor,
        occurred_at=occurred_at,
    )


def revoke_reward(
    customer_id: str,
    grant_id: str,
    *,
    internal_note: str | None = None,
    command_id: str | None = None,
    actor: str | None = None,
    occurred_at: datetime | None = None,
) -> Command:
    """Build ``reward.revoke``: take back an issued, unused reward."""
    data = {"grant_id": grant_id, "internal_note": internal_note}
    return _command(
        names.ADJUSTMENTS,
        "reward.revoke",
        customer_id,
        data,
        command_id=command_id,
        actor=actor,
        occurred_at=occurred_at,
    )


def forget_customer(
    customer_id: str,
    *,
    reason: str | None = None,
    command_id: str | None = None,
    actor: str | None = None,
    occurred_at: datetime | None = None,
) -> Command:
    """Build ``customer.forget``: erase the customer's personal data, keep the balances."""
    return _command(
        names.CUSTOMERS,
        "customer.forget",
        customer_id,
        {"reason": reason},
        command_id=command_id,
        actor=actor,
        occurred_at=occurred_at,
    )


def change_tier(
    customer_id: str,
    tier: str,
    *,
    notify: bool | None = None,
    entry_rewards: bool | None = None,
    internal_note: str | None = None,
    command_id: str | None = None,
    actor: str | None = None,
    occurred_at: datetime | None = None,
) -> Command:
    """Build ``tier.change``: put the customer in that tier now."""
    data = {
        "tier": tier,
        "notify": notify,
        "entry_rewards": entry_rewards,
        "internal_note": internal_note,
    }
    return _command(
        names.TIER_COMMANDS,
        "tier.change",
        customer_id,
        data,
        command_id=command_id,
        actor=actor,
        occurred_at=occurred_at,
    )


def manage_tier(
    action: ManageAction,
    strategy: ManageStrategy,
    *,
    customer_id: str | None = None,
    group_id: str | None = None,
    tier: str | None = None,
    expiry: dict[str, Any] | None = None,
    notify: bool | None = None,
    entry_rewards: bool | None = None,
    extended_fields: dict[str, Any] | None = None,
    internal_note: str | None = None,
    command_id: str | None = None,
    actor: str | None = None,
    occurred_at: datetime | None = None,
) -> Command:
    """Build ``tier.manage`` for one customer or, with ``group_id``, every member of a group."""
    if (customer_id is None) == (group_id is None):
        raise ValueError("give exactly one of customer_id and group_id")
    data = {
        "action": action,
        "strategy": strategy,
        "tier": tier,
        "expiry": expiry,
        "notify": notify,
        "entry_rewards": entry_rewards,
        "extended_fields": extended_fields or None,
        "group_id": group_id,
        "internal_note": internal_note,
    }
    key = customer_id if customer_id is not None else GROUP_PREFIX + str(group_id)
    return _command(
        names.TIER_COMMANDS,
        "tier.manage",
        key,
        data,
        command_id=command_id,
        actor=actor,
        occurred_at=occurred_at,
    )


class AdminClient:
    """Publish admin commands with an idempotent producer (acks from every in-sync replica)."""

    def __init__(self, producer: AIOKafkaProducer, *, topics: Topics | None = None) -> None:
        self.producer = producer
        self.topics = topics or Topics()

    @classmethod
    @asynccontextmanager
    async def connect(cls, settings: Settings) -> AsyncIterator[AdminClient]:
        """Start a producer for the configured cluster, yield a client, stop it afterwards."""
        producer = kafka_producer(settings)
        await producer.start()
        try:
            yield cls(producer, topics=Topics(settings.topic_namespace))
        finally:
            await producer.stop()

    def topic(self, contract_topic: str) -> str:
        """Return the topic name under this client's namespace."""
        return self.topics.name(contract_topic)

    async def publish(self, command: Command) -> Command:
        """Publish one command and wait until Kafka has it; return it."""
        await self.producer.send_and_wait(
            self.topic(command.topic), command.value(), key=command.customer_id.encode()
        )
        return command

    async def adjust_points(self, customer_id: str, delta: int, **options: Any) -> Command:
        """Publish ``points.adjust`` (options as ``adjust_points``)."""
        return await self.publish(adjust_points(customer_id, delta, **options))

    async def adjust_stamps(self, customer_id: str, delta: int, **options: Any) -> Command:
        """Publish ``stamps.adjust`` (options as ``adjust_stamps``)."""
        return await self.publish(adjust_stamps(customer_id, delta, **options))

    async def redeem_reward(self, customer_id: str, reward_id: str, **options: Any) -> Command:
        """Publish ``reward.redeem`` (options as ``redeem_reward``)."""
        return await self.publish(redeem_reward(customer_id, reward_id, **options))

    async def revoke_reward(self, customer_id: str, grant_id: str, **options: Any) -> Command:
        """Publish ``reward.revoke`` (options as ``revoke_reward``)."""
        return await self.publish(revoke_reward(customer_id, grant_id, **options))

    async def change_tier(self, customer_id: str, tier: str, **options: Any) -> Command:
        """Publish ``tier.change`` (options as ``change_tier``)."""
        return await self.publish(change_tier(customer_id, tier, **options))

    async def manage_tier(
        self, action: ManageAction, strategy: ManageStrategy, **options: Any
    ) -> Command:
        """Publish ``tier.manage`` (options as ``manage_tier``)."""
        return await self.publish(manage_tier(action, strategy, **options))
