"""What a reward is worth at checkout: an amount off, a percentage off, or a product.

Catalog rewards may carry a ``value`` and ``valid_days`` in the program; the grant copies both
(``valid_until`` = granted at + ``valid_days``), and ``reward.granted`` carries them, so the
coupon registry needs no catalog lookup and a later program change never alters an issued
coupon.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, PlainSerializer, model_validator
from pydantic_core import PydanticCustomError

from models.values import ConfigModel, Name, exact_number, format_decimal

VALUE_LIMIT = Decimal(10**12)
MAX_VALID_DAYS = 36_600
"""A hundred years: coupons valid longer than that are really "no expiry" (leave it out)."""


def _positive(value: Any) -> Decimal:
    number = exact_number(value)
    if isinstance(number, bool) or not isinstance(number, int | Decimal | str):
        raise PydanticCustomError("number", "must be a number like 10 or 12.50", {})
    try:
        result = Decimal(number)
    except InvalidOperation:
        raise PydanticCustomError("number", "must be a number like 10 or 12.50", {}) from None
    if not result.is_finite() or result <= 0 or result >= VALUE_LIMIT:
        raise PydanticCustomError("number", "must be above 0 and below 1000000000000", {})
    return result


PositiveAmount = Annotated[
    Decimal,
    BeforeValidator(_positive),
    PlainSerializer(format_decimal, return_type=str, when_used="json"),
]
"""An amount above zero; read exactly from YAML or JSON, written as a decimal string."""

_FIELD_OF_KIND = {"amount_off": "amount", "percent_off": "percent", "product": "product"}


class RewardValue(ConfigModel):
    """``amount_off`` with ``amount``, ``percent_off`` with ``percent``, or ``product``.

    ``amount`` is in the program's currency; ``percent`` is at most 100; ``product`` names the
    product (sku or id) the reward gives.
    """

    kind: Literal["amount_off", "percent_off", "product"]
    amount: PositiveAmount | None = None
    percent: PositiveAmount | None = None
    product: Name | None = None

    @model_validator(mode="after")
    def _one_field(self) -> RewardValue:
        wanted = _FIELD_OF_KIND[self.kind]
        given = [name for name in _FIELD_OF_KIND.values() if getattr(self, name) is not None]
        if given != [wanted]:
            raise PydanticCustomError(
                "reward_value",
                "a {kind} value needs exactly '{wanted}' (got {given})",
                {"kind": self.kind, "wanted": wanted, "given": ", ".join(given) or "none"},
            )
        if self.percent is not None and self.percent > 100:
            raise PydanticCustomError("reward_value", "percent must be at most 100", {})
        return self
