"""Value types shared by messages, program and state: money, timestamps, ids, the frozen base."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

MONEY_MAX_DECIMALS = 4
MONEY_LIMIT = Decimal(10**12)
"""Money is below this (a trillion): larger amounts are typos or attacks, and refusing them
keeps every sum and product of the rules exact and far from Decimal's 28-digit precision."""
EXTENDED_NUMBER_DIGITS = 18
"""Numbers in extended fields have fewer integer digits than this (huge exponents stall Python)."""
EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_EVENT = datetime(2200, 1, 1, tzinfo=UTC)
"""Business times of input messages lie in [EARLIEST_EVENT, LATEST_EVENT): far from the
``datetime`` range, so adding expiry and membership months can never overflow."""
MONEY_HINT = 'money must be a decimal string like "129.90"'
TIMESTAMP_HINT = "must be an RFC 3339 timestamp with an offset, like 2025-03-01T12:00:00Z"


class DomainModel(BaseModel):
    """Base of every domain model: immutable, unknown fields ignored (forward compatible)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class ConfigModel(DomainModel):
    """Base of program-file sections: unknown keys are refused so a misspelt setting is caught."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class JsonFloat(Decimal):
    """A JSON number written with a fraction or exponent, kept exact; money refuses it."""


_MONEY_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def _money(value: Any) -> Decimal:
    # Floats (and JSON numbers) are refused: money crosses the wire as a string, exactly.
    if isinstance(value, bool | int | float | JsonFloat):
        raise PydanticCustomError(
            "money_type", MONEY_HINT + " (got a number: {value})", {"value": value}
        )
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        # The schema's shape (ASCII digits, one optional point): Decimal() alone would also take
        # "1_000", " 1 ", "1E+3" and non-ASCII digits, which the schema promises senders it refuses.
        if _MONEY_TEXT.fullmatch(value) is None:
            raise PydanticCustomError(
                "money_format", MONEY_HINT + " (got {value})", {"value": repr(value)}
            )
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise PydanticCustomError(
                "money_format", MONEY_HINT + " (got {value})", {"value": repr(value)}
            ) from None
    else:
        raise PydanticCustomError("money_type", MONEY_HINT, {})
    if not amount.is_finite():
        raise PydanticCustomError(
            "money_format", MONEY_HINT + " (got {value})", {"value": repr(str(value))}
        )
    if amount < 0:
        raise PydanticCustomError(
            "money_negative", "must not be negative (got {value})", {"value": str(amount)}
        )
    if amount >= MONEY_LIMIT:
        raise PydanticCustomError(
            "money_too_large",
            "must be below 1000000000000 (got {value})",
            {"value": format(amount, "E")},
        )
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MONEY_MAX_DECIMALS:
        raise PydanticCustomError(
            "money_decimals",
            "at most {max} decimal places are allowed (got {value})",
            {"max": MONEY_MAX_DECIMALS, "value": str(amount)},
        )
    return amount


def format_decimal(value: Decimal) -> str:
    """Return a decimal as a plain string, never in exponent notation."""
    return format(value, "f")


Money = Annotated[
    Decimal,
    BeforeValidator(_money),
    PlainSerializer(format_decimal, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "pattern": r"^\d+(\.\d{1,4})?$", "examples": ["129.90"]},
    ),
]
"""A non-negative amount of money: a decimal string on the wire, ``Decimal`` in code."""


def _timestamp(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise PydanticCustomError(
                "timestamp_format", TIMESTAMP_HINT + " (got {value})", {"value": repr(value)}
            ) from None
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise PydanticCustomError("timestamp_type", TIMESTAMP_HINT, {})
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise PydanticCustomError(
            "timestamp_naive",
            "timestamp has no UTC offset; add one, like 2025-03-01T12:00:00Z or +02:00",
            {},
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59-01:00 is past the end of datetime in UTC
        raise PydanticCustomError(
            "timestamp_range", "is out of range (got {value})", {"value": repr(str(value))}
        ) from None


def _event_time(value: datetime) -> datetime:
    if not EARLIEST_EVENT <= value < LATEST_EVENT:
        raise PydanticCustomError(
            "timestamp_range",
            "must be from {earliest} up to (not including) {latest} (got {value})",
            {
                "earliest": format_timestamp(EARLIEST_EVENT),
                "latest": format_timestamp(LATEST_EVENT),
                "value": format_timestamp(value),
            },
        )
    return value


def format_timestamp(value: datetime) -> str:
    """Return an aware datetime as RFC 3339 in UTC with a ``Z`` suffix."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


Timestamp = Annotated[
    datetime,
    BeforeValidator(_timestamp),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "format": "date-time"},
    ),
]
"""A timezone-aware instant, normalised to UTC; naive timestamps are refused."""

EventTime = Annotated[Timestamp, AfterValidator(_event_time)]
"""The business time of an input message: a ``Timestamp`` in the years 2000 to 2199."""


def _calendar_date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise PydanticCustomError(
        "date_format", "must be a date like 2026-01-31 (got {value})", {"value": repr(value)}
    )


CalendarDate = Annotated[
    date,
    BeforeValidator(_calendar_date),
    WithJsonSchema(
        {"type": "string", "format": "date"},
    ),
]
"""A calendar date written ``YYYY-MM-DD``."""


def exact_number(value: Any) -> Any:
    """Turn float-like numbers into exact decimals; leave everything else as it is."""
    # JSON numbers with a fraction become Decimal so extended fields never carry float noise.
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PydanticCustomError("number_finite", "numbers must be finite", {})
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise PydanticCustomError("number_finite", "numbers must be finite", {})
        if value and value.adjusted() >= EXTENDED_NUMBER_DIGITS:
            raise PydanticCustomError(
                "number_too_large",
                "numbers must have at most {digits} digits before the point (got {value})",
                {"digits": EXTENDED_NUMBER_DIGITS, "value": format(value, "E")},
            )
        return Decimal(value)
    return value


ExtendedValue = Annotated[
    str | bool | int | Decimal,
    BeforeValidator(exact_number),
    PlainSerializer(lambda v: format_decimal(v) if isinstance(v, Decimal) else v, when_used="json"),
    WithJsonSchema(
        {"type": ["string", "number", "boolean"]},
    ),
]
"""An extended-field value: string, boolean, integer or exact decimal number."""

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=200)]
"""An id, 1-200 characters."""

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
"""A short non-blank name (tier, reward, sku ...)."""

Note = Annotated[str, StringConstraints(max_length=2000)]
"""A free-text note."""

PositiveInt = Annotated[int, Field(strict=True, ge=1)]
NonNegativeInt = Annotated[int, Field(strict=True, ge=0)]


class Batch(DomainModel):
    """Where a command came from in a bulk import; imports send no email by default."""

    id: Identifier
    row: NonNegativeInt
    suppress_notifications: StrictBool = True


def _pattern(regex: str, hint: str) -> AfterValidator:
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise PydanticCustomError("format", hint + " (got {value})", {"value": repr(value)})
        return value

    return AfterValidator(check)


CurrencyCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True),
    _pattern(r"[A-Z]{3}", "must be a 3-letter ISO 4217 currency code in capitals, like EUR"),
    WithJsonSchema(
        {"type": "string", "pattern": "^[A-Z]{3}$"},
    ),
]
"""An ISO 4217 currency code such as ``EUR``."""

EmailAddress = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=320),
    _pattern(r"[^@\s]+@[^@\s]+", "must be an email address like ana@example.com"),
]
"""An email address (only its shape is checked; delivery proves the rest)."""


# Plainer wording for pydantic's built-in errors; our own validators already speak plainly.
_PLAIN_MESSAGES = {
    "missing": "is required",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "int_parsing": "must be a whole number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object (a mapping)",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "extra_forbidden": "is not a known setting; check its spelling",
    "decimal_parsing": "must be a number",
    "decimal_type": "must be a number",
}
_BOUNDS = {
    "greater_than_equal": ">=",
    "greater_than": ">",
    "less_than_equal": "<=",
    "less_than": "<",
}


def _location(loc: tuple[int | str, ...], skip: frozenset[str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in skip or "[" in part or "function" in part:
            continue  # a union member's tag or a validator step, not a key the sender wrote
        else:
            path += f".{part}" if path else part
    return path


def _plain(error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx", {})
    if kind in _BOUNDS:
        limit = next(iter(ctx.values()), "?")
        return f"must be {_BOUNDS[kind]} {limit}"
    if kind in {"literal_error", "enum"}:
        return str(error["msg"]).replace("Input should be", "must be")
    if kind == "union_tag_invalid":
        return f"unknown {ctx['discriminator']} {ctx['tag']!r}; one of {ctx['expected_tags']}"
    if kind == "union_tag_not_found":
        return f"{ctx['discriminator']} is required"
    if kind in {"too_short", "too_long", "string_too_short", "string_too_long"}:
        return (
            str(error["msg"])
            .replace("Value should have", "must have")
            .replace("String should have", "must have")
        )
    return _PLAIN_MESSAGES.get(kind, str(error["msg"]))


def explain_each(
    exc: ValidationError, *, skip: frozenset[str] = frozenset(), drop: frozenset[str] = frozenset()
) -> list[str]:
    """Return every problem of a validation error as ``path: what is wrong``, one per item.

    ``drop`` leaves out errors of these types (a caller that reports them another way).
    """
    problems = []
    for error in exc.errors(include_url=False):
        if error["type"] in drop:
            continue
        where = _location(tuple(error["loc"]), skip)
        text = _plain(error)
        problems.append(f"{where}: {text}" if where else text)
    return problems


def explain(exc: ValidationError, *, skip: frozenset[str] = frozenset()) -> str:
    """Return every problem of a validation error as ``path: what is wrong``, joined by ``;``."""
    return "; ".join(explain_each(exc, skip=skip))


class Envelope(DomainModel):
    """Fields every message carries; subclasses fix ``type`` and type ``data``."""

    id: Identifier
    customer_id: Identifier
    occurred_at: EventTime
    source: str | None = None
    actor: str | None = None
    batch: Batch | None = None
