"""The four tier-expiry strategies of ``tier.manage``: when a temporary tier ends."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from models.messages import (
    AfterFieldDateExpiry,
    DurationExpiry,
    DurationFromFieldExpiry,
    FixedDateExpiry,
)
from models.rules.base import Rejection
from models.rules.periods import add_duration, start_of_day
from models.tier_messages import DAYS_LIMIT, MONTHS_LIMIT
from models.values import EARLIEST_EVENT, LATEST_EVENT, ExtendedValue

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
    """The date or timestamp in a field, at its own offset (a date: midnight UTC).

    ``None`` if malformed or outside 2000-2199. The offset is kept so that months are counted
    on the field's own calendar date (see ``expiry_at``).
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if "T" in text:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None or moment.utcoffset() is None:
                return None
            in_utc = moment.astimezone(UTC)
        else:
            moment = in_utc = start_of_day(date.fromisoformat(text))
    except (ValueError, OverflowError):
        return None
    return moment if EARLIEST_EVENT <= in_utc < LATEST_EVENT else None


def _field_length(value: ExtendedValue, limit: int) -> int | None:
    """The whole number 1..``limit`` in a field; ``None`` for anything else."""
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except ArithmeticError:
        return None
    # Bounded before the integral check: int(Decimal("1e999999999")) would never finish.
    if not number.is_finite() or not 1 <= number <= limit:
        return None
    if number != number.to_integral_value():
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
                    f"timestamp with an offset, in the years 2000 to 2199 "
                    f"(got {fields[rule.field]!r})"
                ),
            )
        # Calendar steps on the field's own date, then UTC: "30 Jan 22:00 -05:00 + 1 month"
        # is the last day of February there, not the day a UTC calendar would give.
        ends = add_duration(base, days=rule.days or 0, months=rule.months or 0).astimezone(UTC)
    else:
        if rule.field not in fields:
            return _missing(rule.field, fields)
        limit = MONTHS_LIMIT if rule.unit == "months" else DAYS_LIMIT
        length = _field_length(fields[rule.field], limit)
        if length is None:
            return Rejection(
                code="expiry_field_malformed",
                reason=(
                    f"extended field {rule.field!r} must be a whole number of {rule.unit} >= 1 "
                    f"and <= {limit} (got {fields[rule.field]!r})"
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
