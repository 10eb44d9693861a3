"""Output messages (tier changes, rewards, notifications) and their deterministic ids.

Outputs use the input envelope; their ``id`` comes from ``derive_id`` over the cause, so a
replay produces the same ids and downstream consumers can deduplicate.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from pydantic import Field, JsonValue

from models.reward_value import RewardValue
from models.values import Batch, DomainModel, Identifier, Name, NonNegativeInt, Timestamp

MAX_ID_LENGTH = 200
ENGINE_SOURCE = "loyalty"

NotificationKind = Literal[
    "tier_upgraded",
    "tier_downgraded",
    "tier_renewed",
    "reward_redeemed",
    "stamp_card_completed",
    "reward_revoked",
    "points_expired",
    "points_expiring",
    "tier_expiring",
]
"""Kinds of email the notifier renders, one per event a customer sees as one (an upgrade with
its entry rewards and their codes, a redemption with its code, a full stamp card with its
reward's code ...); the program's ``emails`` toggles use the same names."""

NOTIFICATION_KINDS: tuple[NotificationKind, ...] = (
    "tier_upgraded",
    "tier_downgraded",
    "tier_renewed",
    "reward_redeemed",
    "stamp_card_completed",
    "reward_revoked",
    "points_expired",
    "points_expiring",
    "tier_expiring",
)


def derive_id(cause_id: str, kind: str, *parts: str | int) -> str:
    """Return a deterministic output id from the cause's id, the output kind and extra parts."""
    readable = ":".join([cause_id, kind, *(str(part) for part in parts)])
    if len(readable) <= MAX_ID_LENGTH:
        return readable
    # Too long to read anyway: keep a recognisable prefix and make it unique with a hash.
    digest = hashlib.sha256(readable.encode("utf-8")).hexdigest()[:32]
    return f"{kind}:{digest}:{cause_id}"[:MAX_ID_LENGTH]


class Cause(DomainModel):
    """The input message that led to an output."""

    type: str
    id: Identifier


class OutputEnvelope(DomainModel):
    """Envelope of outputs; ``occurred_at`` is the ``now`` the rules were given."""

    id: Identifier
    customer_id: Identifier
    occurred_at: Timestamp
    source: str = ENGINE_SOURCE
    actor: str | None = None
    batch: Batch | None = None


class TierChangedData(DomainModel):
    """One real tier change; ``None`` for a tier means "no tier"."""

    from_tier: str | None
    to_tier: str | None
    direction: Literal["up", "down", "renew", "expire"]
    cause: Cause
    expires_at: Timestamp | None = None
    program_version: str
    notified: bool
    entry_rewards_granted: tuple[str, ...] = ()


class TierChanged(OutputEnvelope):
    """The customer's tier changed (on loyalty.tier-changes)."""

    type: Literal["tier.changed"] = "tier.changed"
    data: TierChangedData


class RewardGrantedData(DomainModel):
    """A grant as issued: ``code`` is what the customer shows at checkout to use it."""

    grant_id: Identifier
    reward_id: Name
    code: str
    origin: Literal["entry", "card", "redemption"]
    reason: Literal["entry", "redeem", "stamp_card", "manual"]
    cause: Cause
    tier: str | None = None
    points_spent: NonNegativeInt = 0
    stamps_spent: NonNegativeInt = 0
    value: RewardValue | None = None
    """What the coupon is worth (from the catalog when granted); none: not stated."""
    valid_until: Timestamp | None = None
    """When the coupon expires; none: no expiry."""


class RewardGranted(OutputEnvelope):
    """A reward was issued to the customer (entry reward, redemption or full stamp card)."""

    type: Literal["reward.granted"] = "reward.granted"
    data: RewardGrantedData


class RewardRedeemedData(DomainModel):
    grant_id: Identifier
    reward_id: Name
    cause: Cause
    points_spent: NonNegativeInt = 0
    stamps_spent: NonNegativeInt = 0


class RewardRedeemed(OutputEnvelope):
    """The customer spent points or stamps on a catalog reward."""

    type: Literal["reward.redeemed"] = "reward.redeemed"
    data: RewardRedeemedData


class RewardRevokedData(DomainModel):
    grant_id: Identifier
    reward_id: Name
    cause: Cause


class RewardRevoked(OutputEnvelope):
    """An issued, unused reward was removed."""

    type: Literal["reward.revoked"] = "reward.revoked"
    data: RewardRevokedData


class RewardUsedData(DomainModel):
    """A grant was used: its code came with a paid order."""

    grant_id: Identifier
    reward_id: Name
    code: str
    order_id: Identifier
    cause: Cause


class RewardUsed(OutputEnvelope):
    """An issued reward was used on an order (its code was in ``order.paid``)."""

    type: Literal["reward.used"] = "reward.used"
    data: RewardUsedData


class RewardReinstatedData(DomainModel):
    """A used grant is usable again: the order it was used on no longer stands."""

    grant_id: Identifier
    reward_id: Name
    code: str
    order_id: Identifier
    """The order the reward had been used on, now cancelled or refunded in full."""
    reason: str
    cause: Cause


class RewardReinstated(OutputEnvelope):
    """A used reward was given back, with the same code (on loyalty.rewards)."""

    type: Literal["reward.reinstated"] = "reward.reinstated"
    data: RewardReinstatedData


class NotificationRequestedData(DomainModel):
    """What the notifier needs to render and send one email."""

    kind: NotificationKind
    email: str
    first_name: str | None = None
    last_name: str | None = None
    cause: Cause
    template_data: dict[str, JsonValue] = Field(default_factory=dict)

    @property
    def name(self) -> str:
        """Return the customer's display name, empty when unknown."""
        return " ".join(part for part in (self.first_name, self.last_name) if part)


class NotificationRequested(OutputEnvelope):
    """Ask the notifier to email the customer (on loyalty.notifications)."""

    type: Literal["notification.requested"] = "notification.requested"
    data: NotificationRequestedData


OutputMessage = Annotated[
    TierChanged
    | RewardGranted
    | RewardRedeemed
    | RewardRevoked
    | RewardUsed
    | RewardReinstated
    | NotificationRequested,
    Field(discriminator="type"),
]
"""Every message the rules emit."""
