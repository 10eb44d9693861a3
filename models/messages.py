"""Messages of the public contract (shared/CONTRACT.md) plus the project's own system events.

Commands have imperative names (``AdjustPoints``), events past-tense ones (``OrderPaid``).
Every message is the envelope with a typed ``data``. ``InputMessage`` lists every input type
once; the wire format (JSON bytes, the type registry, parse errors) is ``topics/codec.py``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    model_validator,
)
from pydantic_core import PydanticCustomError

from models.outputs import (
    NOTIFICATION_KINDS,
    Cause,
    NotificationKind,
    NotificationRequested,
    NotificationRequestedData,
    OutputEnvelope,
    OutputMessage,
    RewardGranted,
    RewardGrantedData,
    RewardRedeemed,
    RewardRedeemedData,
    RewardRevoked,
    RewardRevokedData,
    TierChanged,
    TierChangedData,
    derive_id,
)
from models.tier_messages import (
    GROUP_PREFIX,
    MONTHS_LIMIT,
    AfterFieldDateExpiry,
    ChangeTier,
    ChangeTierData,
    DurationExpiry,
    DurationFromFieldExpiry,
    Expiry,
    FixedDateExpiry,
    ManageTier,
    ManageTierData,
)
from models.time_events import (
    ConfirmPoints,
    ConfirmPointsData,
    ExpirePoints,
    ExpirePointsData,
    ExpireTier,
    ExpireTierData,
    SendReminders,
    SendRemindersData,
)
from models.values import (
    CurrencyCode,
    DomainModel,
    EmailAddress,
    Envelope,
    ExtendedValue,
    Identifier,
    Money,
    Name,
    Note,
    PositiveInt,
)

DEFAULT_STAMPS_NOTE = "Manual adjustment"
SYSTEM_SOURCE = "system"

# Outputs, tier commands and time events live in their own modules; re-exported so every
# message is found here.
__all__ = [
    "GROUP_PREFIX",
    "NOTIFICATION_KINDS",
    "AfterFieldDateExpiry",
    "Cause",
    "ChangeTier",
    "ChangeTierData",
    "ConfirmPoints",
    "ConfirmPointsData",
    "DurationExpiry",
    "DurationFromFieldExpiry",
    "Envelope",
    "ExpirePoints",
    "ExpirePointsData",
    "ExpireTier",
    "ExpireTierData",
    "Expiry",
    "FixedDateExpiry",
    "ManageTier",
    "ManageTierData",
    "NotificationKind",
    "NotificationRequested",
    "NotificationRequestedData",
    "OutputEnvelope",
    "OutputMessage",
    "RewardGranted",
    "RewardGrantedData",
    "RewardRedeemed",
    "RewardRedeemedData",
    "RewardRevoked",
    "RewardRevokedData",
    "SendReminders",
    "SendRemindersData",
    "TierChanged",
    "TierChangedData",
    "derive_id",
]


def _nonzero(unit: str) -> AfterValidator:
    def check(value: int) -> int:
        if value == 0:
            raise PydanticCustomError(
                "delta_zero",
                "must not be 0; send a positive number to add {unit} or a negative one to remove"
                " them",
                {"unit": unit},
            )
        return value

    return AfterValidator(check)


DELTA_LIMIT = 10**9
"""Adjustments move at most this many points or stamps at once (a typo guard; balances stay
far inside the 64-bit integers the store keeps)."""
QUANTITY_LIMIT = 10**6
"""An order line holds at most this many units."""

STAMPS_DELTA_LIMIT = 10_000
"""Stamp adjustments are smaller: every full card they fill is one grant to issue and publish."""

_NOT_ZERO: dict[str, Any] = {"not": {"const": 0}}
_DELTA = Field(strict=True, ge=-DELTA_LIMIT, le=DELTA_LIMIT, json_schema_extra=_NOT_ZERO)
_STAMPS = Field(
    strict=True, ge=-STAMPS_DELTA_LIMIT, le=STAMPS_DELTA_LIMIT, json_schema_extra=_NOT_ZERO
)
PointsDelta = Annotated[int, _DELTA, _nonzero("points")]
"""A signed, non-zero whole number of points, at most 10^9 either way."""
StampsDelta = Annotated[int, _STAMPS, _nonzero("stamps")]
"""A signed, non-zero whole number of stamps, at most 10^4 either way."""
Quantity = Annotated[PositiveInt, Field(le=QUANTITY_LIMIT)]
"""Units of one order line, 1 to 10^6."""
ExpiryMonths = Annotated[PositiveInt, Field(le=MONTHS_LIMIT)]
"""Months until points expire, 1 to 1200."""


# --- loyalty.customers -------------------------------------------------------------------


class CustomerUpsertedData(DomainModel):
    """Profile of a customer; ``groups`` (project addition) replaces the groups when given."""

    email: EmailAddress
    first_name: str | None = None
    last_name: str | None = None
    accepts_email: StrictBool = True
    groups: tuple[Name, ...] | None = None

    @property
    def email_key(self) -> str:
        """Return the email as compared for uniqueness (case-insensitive)."""
        return self.email.strip().casefold()


class CustomerUpserted(Envelope):
    """A customer was created or updated at the source."""

    type: Literal["customer.upserted"] = "customer.upserted"
    data: CustomerUpsertedData


class CustomerRemovedData(DomainModel):
    reason: Note | None = None


class CustomerRemoved(Envelope):
    """A customer left the program: no more earning or email; history is kept."""

    type: Literal["customer.removed"] = "customer.removed"
    data: CustomerRemovedData = CustomerRemovedData()


class CustomerForgetData(DomainModel):
    reason: Note | None = None


class CustomerForget(Envelope):
    """Erase the customer's personal data; balances and the anonymised ledger stay."""

    type: Literal["customer.forget"] = "customer.forget"
    data: CustomerForgetData = CustomerForgetData()


# --- loyalty.orders ----------------------------------------------------------------------


class OrderItem(DomainModel):
    sku: Name
    quantity: Quantity
    unit_price: Money
    product_id: str | None = None
    categories: tuple[str, ...] = ()


RewardCodeText = Annotated[str, Field(min_length=1, max_length=64)]
"""A reward code as the checkout took it (case and spaces do not matter)."""
MAX_REWARD_CODES = 20


class OrderPaidData(DomainModel):
    """A paid order; ``reward_codes`` are the customer's reward codes used on it.

    ``shipping`` and ``tax``, when stated, are parts of ``total`` and earn no points.
    """

    order_id: Identifier
    total: Money
    currency: CurrencyCode
    items: tuple[OrderItem, ...] = ()
    extended_fields: dict[str, ExtendedValue] = Field(default_factory=dict)
    reward_codes: Annotated[tuple[RewardCodeText, ...], Field(max_length=MAX_REWARD_CODES)] = ()
    shipping: Money | None = None
    """Part of ``total``: what the customer paid for shipping (belongs to no item)."""
    tax: Money | None = None
    """Part of ``total``: the tax the customer paid (belongs to no item)."""

    @model_validator(mode="after")
    def _parts_within_total(self) -> OrderPaidData:
        parts = (self.shipping or 0) + (self.tax or 0)
        if parts > self.total:
            raise PydanticCustomError(
                "order_parts",
                "shipping and tax are parts of total, so together they cannot exceed it "
                "(total {total}, shipping + tax {parts})",
                {"total": str(self.total), "parts": str(parts)},
            )
        return self

    @property
    def goods_total(self) -> Decimal:
        """What the items were paid in all: the total less the stated shipping and tax."""
        return self.total - (self.shipping or 0) - (self.tax or 0)


class OrderPaid(Envelope):
    """An order was paid: it earns points and stamps and counts toward the tier."""

    type: Literal["order.paid"] = "order.paid"
    data: OrderPaidData


class RefundItem(DomainModel):
    sku: Name
    quantity: Quantity


class OrderRefundedData(DomainModel):
    """A refund: ``amount`` or ``items`` for a partial one, neither for the whole order."""

    order_id: Identifier
    refund_id: Identifier
    amount: Money | None = None
    items: Annotated[tuple[RefundItem, ...], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _amount_xor_items(self) -> OrderRefundedData:
        if self.amount is not None and self.items is not None:
            raise PydanticCustomError(
                "refund_ambiguous",
                "send either amount or items, not both (neither refunds the whole order)",
                {},
            )
        if self.amount is not None and self.amount == 0:
            raise PydanticCustomError(
                "refund_zero",
                "amount must be greater than 0; omit it to refund the whole order",
                {},
            )
        return self

    @property
    def is_full(self) -> bool:
        """Return whether this refund reverses the whole order."""
        return self.amount is None and self.items is None


class OrderRefunded(Envelope):
    """An order was refunded, wholly or partly: what it earned is reversed pro rata."""

    type: Literal["order.refunded"] = "order.refunded"
    data: OrderRefundedData


class OrderCancelledData(DomainModel):
    order_id: Identifier


class OrderCancelled(Envelope):
    """An order was cancelled: everything it earned is reversed."""

    type: Literal["order.cancelled"] = "order.cancelled"
    data: OrderCancelledData


# --- loyalty.adjustments (commands) ------------------------------------------------------


class AdjustPointsData(DomainModel):
    delta: PointsDelta
    internal_note: Note | None = None
    customer_note: Note | None = None
    expires_in_months: ExpiryMonths | None = None


class AdjustPoints(Envelope):
    """Add or remove points by hand; optional expiry in months; sends no email."""

    type: Literal["points.adjust"] = "points.adjust"
    data: AdjustPointsData


class AdjustStampsData(DomainModel):
    delta: StampsDelta
    internal_note: Note | None = None
    customer_note: Note = DEFAULT_STAMPS_NOTE


class AdjustStamps(Envelope):
    """Add or remove stamps by hand (the balance never goes below zero)."""

    type: Literal["stamps.adjust"] = "stamps.adjust"
    data: AdjustStampsData


class RedeemRewardData(DomainModel):
    """``points``: how many points to spend on a reward priced as a rate (``points_rate``)."""

    reward_id: Name
    points: Annotated[PositiveInt, Field(le=DELTA_LIMIT)] | None = None
    internal_note: Note | None = None


class RedeemReward(Envelope):
    """Spend points or stamps on a catalog reward; refused when the balance is short."""

    type: Literal["reward.redeem"] = "reward.redeem"
    data: RedeemRewardData


class RevokeRewardData(DomainModel):
    grant_id: Identifier
    internal_note: Note | None = None


class RevokeReward(Envelope):
    """Remove an issued, unused reward."""

    type: Literal["reward.revoke"] = "reward.revoke"
    data: RevokeRewardData


InputMessage = Annotated[
    CustomerUpserted
    | CustomerRemoved
    | CustomerForget
    | OrderPaid
    | OrderRefunded
    | OrderCancelled
    | AdjustPoints
    | AdjustStamps
    | RedeemReward
    | RevokeReward
    | ChangeTier
    | ManageTier
    | ExpireTier
    | ExpirePoints
    | ConfirmPoints
    | SendReminders,
    Field(discriminator="type"),
]
"""Every message the rules accept."""

SYSTEM_TYPES = frozenset({"tier.expire", "points.expire", "points.confirm", "reminder.due"})
"""Types only the engine itself sends (the scheduler's time events)."""
