"""Messages on loyalty.tier-commands: manual tier change and the manage-tier action."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictBool, model_validator
from pydantic_core import PydanticCustomError

from models.values import (
    EARLIEST_EVENT,
    LATEST_EVENT,
    CalendarDate,
    DomainModel,
    Envelope,
    ExtendedValue,
    Name,
    NonNegativeInt,
    Note,
)

GROUP_PREFIX = "group:"
DAYS_LIMIT = 36_600
MONTHS_LIMIT = 1200
"""Expiry lengths are at most about a hundred years, so expiry dates never overflow."""
ExpiryDays = Annotated[NonNegativeInt, Field(le=DAYS_LIMIT)]
ExpiryMonths = Annotated[NonNegativeInt, Field(le=MONTHS_LIMIT)]


def _in_event_range(value: date) -> date:
    if not EARLIEST_EVENT.date() <= value < LATEST_EVENT.date():
        raise PydanticCustomError(
            "date_range",
            "must be from {earliest} up to (not including) {latest} (got {value})",
            {
                "earliest": EARLIEST_EVENT.date().isoformat(),
                "latest": LATEST_EVENT.date().isoformat(),
                "value": value.isoformat(),
            },
        )
    return value


# --- loyalty.tier-commands ---------------------------------------------------------------


class ChangeTierData(DomainModel):
    """Manual tier change; ``None`` for notify/entry_rewards means "the default" (see rules)."""

    tier: Name
    notify: StrictBool | None = None
    entry_rewards: StrictBool | None = None
    internal_note: Note | None = None


class ChangeTier(Envelope):
    """Put the customer in a tier now (manual change, or one row of a tier import)."""

    type: Literal["tier.change"] = "tier.change"
    data: ChangeTierData


class FixedDateExpiry(DomainModel):
    """The tier ends on this calendar date (start of the day, UTC)."""

    kind: Literal["fixed_date"]
    date: Annotated[CalendarDate, AfterValidator(_in_event_range)]


def _needs_days_or_months(days: int | None, months: int | None) -> None:
    if days is None and months is None:
        raise PydanticCustomError("expiry_length", "give days, months or both", {})


class DurationExpiry(DomainModel):
    """The tier ends this long after the change."""

    kind: Literal["duration"]
    days: ExpiryDays | None = None
    months: ExpiryMonths | None = None

    @model_validator(mode="after")
    def _length(self) -> DurationExpiry:
        _needs_days_or_months(self.days, self.months)
        if not (self.days or self.months):
            raise PydanticCustomError("expiry_length", "days and months must not both be 0", {})
        return self


class AfterFieldDateExpiry(DomainModel):
    """The tier ends this long after a date found in an extended field (none: on that date)."""

    kind: Literal["after_field_date"]
    field: Name
    days: ExpiryDays | None = None
    months: ExpiryMonths | None = None


class DurationFromFieldExpiry(DomainModel):
    """The tier lasts as many days or months as the number in an extended field."""

    kind: Literal["duration_from_field"]
    field: Name
    unit: Literal["days", "months"]


Expiry = Annotated[
    FixedDateExpiry | DurationExpiry | AfterFieldDateExpiry | DurationFromFieldExpiry,
    Field(discriminator="kind"),
]
"""How long a tier set by ``tier.manage`` lasts."""


class ManageTierData(DomainModel):
    """Upgrade, downgrade or renew; ``specific`` names the tier, ``rules`` lets the rules pick."""

    action: Literal["upgrade", "downgrade", "renew"]
    strategy: Literal["specific", "rules"]
    tier: Name | None = None
    expiry: Expiry | None = None
    notify: StrictBool | None = None
    entry_rewards: StrictBool | None = None
    extended_fields: dict[str, ExtendedValue] = Field(default_factory=dict)
    group_id: Name | None = None
    internal_note: Note | None = None

    @model_validator(mode="after")
    def _tier_matches_strategy(self) -> ManageTierData:
        if self.strategy == "specific" and self.tier is None:
            raise PydanticCustomError(
                "tier_required",
                "strategy 'specific' needs a tier; name one, or use strategy 'rules'",
                {},
            )
        if self.strategy == "rules" and self.tier is not None:
            raise PydanticCustomError(
                "tier_unexpected",
                "strategy 'rules' picks the tier itself; drop tier or use strategy 'specific'",
                {},
            )
        return self


class ManageTier(Envelope):
    """Manage-tier action for one customer or, with ``group_id``, every member of a group."""

    type: Literal["tier.manage"] = "tier.manage"
    data: ManageTierData

    @model_validator(mode="after")
    def _group_key(self) -> ManageTier:
        group_id = self.data.group_id
        if group_id is not None and self.customer_id != GROUP_PREFIX + group_id:
            raise PydanticCustomError(
                "group_key",
                "customer_id: must be '{expected}' when data.group_id is set",
                {"expected": GROUP_PREFIX + group_id},
            )
        if group_id is None and self.customer_id.startswith(GROUP_PREFIX):
            raise PydanticCustomError(
                "group_key",
                "data.group_id: is required when customer_id starts with 'group:'",
                {},
            )
        return self
