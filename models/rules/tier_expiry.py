"""The four tier-expiry strategies of ``tier.manage``: when a temporary tier ends."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from models.messages import (
    AfterFieldDateExpiry,
    DurationExpiry,
    DurationFromFieldExpiry,
    FixedDateExpiry,
)
from models.rules.base import Rejection
from models.rules.periods import add_duration, start_of_day
from models.values import ExtendedValue

ExpiryRule = FixedDateExpiry | DurationExpiry | AfterFieldDateExpiry | DurationFromFieldExpiry


def _missing(field: str, fields: dict[str, ExtendedValue]) -> Rejection:
    known = ", ".join(sorted(fields)) or "(none)"
    return Rejection(
        code="expiry_field_missing",
        reason=(
            f"expiry reads extended field {field!r}, which the command does not carry "
            f"(extended_fields: {known}); add it or choose another expiry"
        ),
    )


def _field_date(value: ExtendedValue) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if "T" in text:
            moment = datetime.fromisoformat(text)
            return moment if moment.tzinfo is not None else None
        return start_of_day(date.fromisoformat(text))
    except ValueError:
        return None


def _field_length(value: ExtendedValue) -> int | None:
    if isinstance(value, bool):
        return None
    number: Decimal | int
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except ArithmeticError:
            return None
    else:
        number = value
    if not Decimal(number).is_finite() or number != int(number) or int(number) < 1:
        return None
    return int(number)


def expiry_at(
    rule: ExpiryRule, at: datetime, fields: dict[str, ExtendedValue]
) -> datetime | Rejection:
    """When the tier set at ``at`` ends; a refusal when a field is missing or malformed."""
    if isinstance(rule, FixedDateExpiry):
        ends = start_of_day(rule.date)
    elif isinstance(rule, DurationExpiry):
        ends = add_duration(at, days=rule.days or 0, months=rule.months or 0)
    elif isinstance(rule, AfterFieldDateExpiry):
        if rule.field not in fields:
            return _missing(rule.field, fields)
        base = _field_date(fields[rule.field])
        if base is None:
            return Rejection(
                code="expiry_field_malformed",
                reason=(
                    f"extended field {rule.field!r} must be a date like 2026-06-15 or a "
                    f"timestamp with an offset (got {fields[rule.field]!r})"
                ),
            )
        ends = add_duration(base, days=rule.days or 0, months=rule.months or 0)
    else:
        if rule.field not in fields:
            return _missing(rule.field, fields)
        length = _field_length(fields[rule.field])
        if length is None:
            return Rejection(
                code="expiry_field_malformed",
                reason=(
                    f"extended field {rule.field!r} must be a whole number of {rule.unit} >= 1 "
                    f"(got {fields[rule.field]!r})"
                ),
            )
        ends = add_duration(at, **{rule.unit: length})
    if ends <= at:
        return Rejection(
            code="expiry_in_past",
            reason=(
                f"the tier would expire at {ends.isoformat()}, not after the command's time "
                f"{at.isoformat()}; choose a later expiry"
            ),
        )
    return ends
