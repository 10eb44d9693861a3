"""The earning sections of the program: how orders earn points (``earn``) and stamps.

Points for an order are its earning base (``models/rules/earning.py``: the order less
shipping and tax, or only its qualifying items) times ``points_per_currency_unit`` times the
tier's ``points_multiplier``, rounded once per order with ``rounding`` (default ``floor``).
"""

from __future__ import annotations

import math
from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Decimal,
    localcontext,
)
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from models.values import ConfigModel, Name, PositiveInt, exact_number

Rounding = Literal["floor", "half_up", "half_even", "ceil"]
MultiplierTier = Literal["held", "reached"]


_POINTS_PRECISION = 80
_DECIMAL_ROUNDING = {
    "floor": ROUND_FLOOR,
    "half_up": ROUND_HALF_UP,
    "half_even": ROUND_HALF_EVEN,
    "ceil": ROUND_CEILING,
}


def _round(value: Fraction, rounding: Rounding) -> int:
    """Round an exact non-negative amount of points to a whole number as the program says."""
    if rounding == "floor":
        return math.floor(value)
    if rounding == "ceil":
        return math.ceil(value)
    if rounding == "half_up":
        return math.floor(value + Fraction(1, 2))
    return round(value)  # half_even: Fraction rounds ties to even


def _non_negative_decimal(value: Any) -> Decimal:
    number = exact_number(value)
    if isinstance(number, bool) or not isinstance(number, int | Decimal | str):
        raise PydanticCustomError("number", "must be a number like 1 or 0.5", {})
    try:
        result = Decimal(number)
    except ArithmeticError:
        raise PydanticCustomError("number", "must be a number like 1 or 0.5", {}) from None
    if not result.is_finite() or result < 0:
        raise PydanticCustomError("number", "must be a number >= 0", {})
    if result >= QUANTITY_LIMIT:
        raise PydanticCustomError("number", "must be below 1000000000000", {})
    return result


QUANTITY_LIMIT = Decimal(10**12)
Quantity = Annotated[Decimal, BeforeValidator(_non_negative_decimal)]
"""A non-negative decimal below 10^12 in the program file; YAML numbers are read exactly."""
Months = Annotated[PositiveInt, Field(le=1200)]
"""A number of months in the program file, 1 to 1200 (dates a century ahead never overflow)."""


class EarnRules(ConfigModel):
    """How orders earn points: the rate, rounding, expiry, filters, pending time, multiplier.

    Without item filters the whole order earns, less its stated shipping and tax; with
    qualifying or excluded skus or categories only the qualifying items earn, on what they
    were paid after the order's discount (``models/rules/earning.py``).
    """

    points_per_currency_unit: Quantity
    rounding: Rounding = "floor"
    points_expire_after_months: Months | None = None
    qualifying_skus: tuple[Name, ...] = ()
    qualifying_categories: tuple[Name, ...] = ()
    excluded_skus: tuple[Name, ...] = ()
    excluded_categories: tuple[Name, ...] = ()
    min_order_value: Quantity = Decimal(0)
    """Orders worth less (without shipping and tax) earn no points."""
    points_pending_days: Annotated[int, Field(strict=True, ge=1, le=3660)] | None = None
    """Points from an order stay pending (not spendable) this many days after payment."""
    multiplier_tier: MultiplierTier = "held"
    """Whose ``points_multiplier`` an order earns at: the tier ``held`` before the order, or
    the tier the order ``reached`` (when it moves the customer up)."""

    @property
    def filters_items(self) -> bool:
        """Whether only some items earn points (any qualifying or excluded list is set)."""
        return bool(
            self.qualifying_skus
            or self.qualifying_categories
            or self.excluded_skus
            or self.excluded_categories
        )

    def item_earns(self, sku: str, categories: tuple[str, ...]) -> bool:
        """Whether an item earns points: not excluded, and qualifying if any list is set."""
        if sku in self.excluded_skus or any(c in self.excluded_categories for c in categories):
            return False
        if not self.qualifying_skus and not self.qualifying_categories:
            return True
        return sku in self.qualifying_skus or any(
            c in self.qualifying_categories for c in categories
        )

    def points_for(self, amount: Decimal | Fraction, multiplier: Decimal = Decimal(1)) -> int:
        """Return the points an earning base of ``amount`` earns, rounded once per order."""
        if isinstance(amount, Decimal):
            # Exact whatever the sizes: quantize raises InvalidOperation past the precision,
            # and 80 digits hold total, rate and multiplier (each < 10^12, 4+ decimals).
            with localcontext(prec=_POINTS_PRECISION):
                raw = amount * self.points_per_currency_unit * multiplier
                return int(raw.quantize(Decimal(1), rounding=_DECIMAL_ROUNDING[self.rounding]))
        # A discounted share of items is a fraction: exact too, slower.
        exact = amount * Fraction(self.points_per_currency_unit) * Fraction(multiplier)
        return _round(exact, self.rounding)


class StampRules(ConfigModel):
    """Stamps per order, or per qualifying item (by sku or category; none listed: every item)."""

    mode: Literal["per_order", "per_qualifying_item"] = "per_order"
    stamps_per_order: PositiveInt = 1
    stamps_per_item: PositiveInt = 1
    qualifying_skus: tuple[Name, ...] = ()
    qualifying_categories: tuple[Name, ...] = ()
    min_order_value: Quantity = Decimal(0)
    card_size: PositiveInt | None = None
    card_reward: Name | None = None

    def qualifies(self, sku: str, categories: tuple[str, ...]) -> bool:
        """Return whether an item with this sku and categories earns stamps."""
        if not self.qualifying_skus and not self.qualifying_categories:
            return True
        return sku in self.qualifying_skus or any(
            category in self.qualifying_categories for category in categories
        )
