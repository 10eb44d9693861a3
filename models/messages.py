"""Messages of the public contract (shared/CONTRACT.md) plus the project's own system events.

Commands have imperative names (``AdjustPoints``), events past-tense ones (``OrderPaid``).
Every message is the envelope with a typed ``data``; ``parse_message`` turns raw input into one
of ``InputMessage`` or raises a single ``MessageError`` whose text tells the sender what to fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from models.outputs import (
    NOTIFICATION_KINDS,
    Cause,
    DeadLetter,
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
    to_json,
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
from models.values import (
    CurrencyCode,
    DomainModel,
    EmailAddress,
    Envelope,
    EventTime,
    ExtendedValue,
    Identifier,
    JsonFloat,
    Money,
    Name,
    Note,
    PositiveInt,
    explain,
)

DEFAULT_STAMPS_NOTE = "Manual adjustment"
SYSTEM_SOURCE = "system"

# Outputs and tier commands live in their own modules; re-exported so every message is found here.
__all__ = [
    "GROUP_PREFIX",
    "NOTIFICATION_KINDS",
    "AfterFieldDateExpiry",
    "Cause",
    "ChangeTier",
    "ChangeTierData",
    "DeadLetter",
    "DurationExpiry",
    "DurationFromFieldExpiry",
    "Envelope",
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
    "TierChanged",
    "TierChangedData",
    "derive_id",
    "to_json",
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


# --- loyalty.orders ----------------------------------------------------------------------


class OrderItem(DomainModel):
    sku: Name
    quantity: Quantity
    unit_price: Money
    product_id: str | None = None
    categories: tuple[str, ...] = ()


class OrderPaidData(DomainModel):
    order_id: Identifier
    total: Money
    currency: CurrencyCode
    items: tuple[OrderItem, ...] = ()
    extended_fields: dict[str, ExtendedValue] = Field(default_factory=dict)


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
    reward_id: Name
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


# --- project-owned system events (source "system"; not in the public contract) -----------


class ExpireTierData(DomainModel):
    """Fires at ``due_at``; a no-op unless a tier ending or review is really due by then."""

    due_at: EventTime
    tier: Name | None = None


class ExpireTier(Envelope):
    """Internal: a tier or hold ends, or activity leaves the period (time as data, inv. 7)."""

    type: Literal["tier.expire"] = "tier.expire"
    data: ExpireTierData


class ExpirePointsData(DomainModel):
    """Fires at ``due_at``; expires every points lot whose expiry is at or before it."""

    due_at: EventTime


class ExpirePoints(Envelope):
    """Internal: earned or adjusted points reach their expiry (time as data, invariant 7)."""

    type: Literal["points.expire"] = "points.expire"
    data: ExpirePointsData


InputMessage = Annotated[
    CustomerUpserted
    | CustomerRemoved
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
    | ExpirePoints,
    Field(discriminator="type"),
]
"""Every message the rules accept."""

SYSTEM_TYPES = frozenset({"tier.expire", "points.expire"})

INPUT_TYPES: tuple[str, ...] = (
    "customer.upserted",
    "customer.removed",
    "order.paid",
    "order.refunded",
    "order.cancelled",
    "points.adjust",
    "stamps.adjust",
    "reward.redeem",
    "reward.revoke",
    "tier.change",
    "tier.manage",
    "tier.expire",
    "points.expire",
)
_EXPIRY_KINDS = frozenset({"fixed_date", "duration", "after_field_date", "duration_from_field"})
_TAGS = frozenset(INPUT_TYPES) | _EXPIRY_KINDS
_INPUT_ADAPTER: TypeAdapter[InputMessage] = TypeAdapter(InputMessage)


class MessageError(ValueError):
    """A message that cannot be accepted; ``code`` is stable, ``message`` says what to fix."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


MAX_INT_DIGITS = 40
"""JSON integers longer than this are refused before Python converts them (no bound of the
contract needs more, and converting thousands of digits is slow or raises ValueError)."""
MAX_DEPTH = 32
"""Nesting deeper than this is refused: no message of the contract nests more than 5 levels."""
_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_constant(name: str) -> Any:
    raise MessageError("invalid_json", f"{name} is not a JSON number; send a finite number")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise MessageError(
            "invalid_json", f"a number with {len(text)} digits is too large; no field takes one"
        )
    return int(text)


def _check_strings(value: Any, depth: int = 0) -> None:
    """Refuse nesting deeper than ``MAX_DEPTH`` and strings that are not valid Unicode."""
    # \ud800 escapes are valid JSON but no UTF-8 text: they would fail later, on the way out.
    if depth > MAX_DEPTH:
        raise MessageError("invalid_json", f"message nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise MessageError(
                "invalid_encoding",
                "message holds a lone surrogate escape (like \\ud800), which is not Unicode text",
            )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_strings(key, depth + 1)
            _check_strings(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_strings(item, depth + 1)


def _decode(raw: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        value: Any = dict(raw)
    else:
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise MessageError("invalid_encoding", f"message is not UTF-8: {exc}") from None
        try:
            value = json.loads(
                raw,
                parse_float=JsonFloat,
                parse_int=_parse_int,
                parse_constant=_refuse_constant,
            )
        except json.JSONDecodeError as exc:
            raise MessageError("invalid_json", f"message is not valid JSON: {exc}") from None
        except RecursionError:
            raise MessageError(
                "invalid_json", f"message nests deeper than {MAX_DEPTH} levels"
            ) from None
    if not isinstance(value, dict):
        raise MessageError("invalid_json", "message must be one JSON object (the envelope)")
    _check_strings(value)
    return value


def parse_message(raw: bytes | str | Mapping[str, Any]) -> InputMessage:
    """Parse and validate one input message, or raise ``MessageError`` saying what to fix."""
    value = _decode(raw)
    kind = value.get("type")
    if kind not in INPUT_TYPES:
        got = "no type" if kind is None else f"unknown type {kind!r}"
        raise MessageError("unknown_type", f"type: {got}; known types: {', '.join(INPUT_TYPES)}")
    try:
        return _INPUT_ADAPTER.validate_python(value)
    except ValidationError as exc:
        raise MessageError("invalid_message", explain(exc, skip=_TAGS)) from None
