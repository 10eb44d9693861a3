"""What a reward is worth at checkout: an amount off, a percentage off, or a product.

Catalog rewards may carry a ``value`` and ``valid_days`` in the program; the grant copies both
(``valid_until`` = granted at + ``valid_days``), and ``reward.granted`` carries them, so the
coupon registry needs no catalog lookup and a later program change never alters an issued
coupon.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, model_validator
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


class PointsRate(ConfigModel):
    """A catalog reward bought with any number of points, in steps, at a rate.

    ``points`` points are worth ``amount`` off (in the program's currency); a redemption names
    how many points to spend (``reward.redeem`` ``points``): a multiple of ``points``, from
    ``min_points`` to ``max_points``. The grant records the value it is worth.
    """

    points: Annotated[int, Field(strict=True, ge=1, le=10**9)]
    amount: PositiveAmount
    min_points: Annotated[int, Field(strict=True, ge=1, le=10**9)] | None = None
    """The fewest points one redemption spends; none: one step."""
    max_points: Annotated[int, Field(strict=True, ge=1, le=10**9)] | None = None
    """The most points one redemption spends; none: no limit but the balance."""

    @model_validator(mode="after")
    def _steps(self) -> PointsRate:
        for name in ("min_points", "max_points"):
            bound = getattr(self, name)
            if bound is not None and bound % self.points:
                raise PydanticCustomError(
                    "points_rate",
                    "{name} ({bound}) must be a multiple of points ({points}), the step",
                    {"name": name, "bound": bound, "points": self.points},
                )
        if self.max_points is not None and self.max_points < self.lowest:
            raise PydanticCustomError(
                "points_rate",
                "max_points ({high}) must be at least min_points ({low})",
                {"high": self.max_points, "low": self.lowest},
            )
        return self

    @property
    def lowest(self) -> int:
        """The fewest points a redemption may spend."""
        return self.min_points if self.min_points is not None else self.points

    def value_of(self, points: int) -> RewardValue:
        """What ``points`` points (a multiple of the step) are worth: an amount off."""
        return RewardValue(kind="amount_off", amount=self.amount * (points // self.points))

    def problem(self, points: int | None, balance: int) -> tuple[str, str] | None:
        """Why spending ``points`` is refused (code, what to send instead), or ``None``."""
        allowed = f"a multiple of {self.points} from {self.lowest}" + (
            f" to {self.max_points}" if self.max_points is not None else ""
        )
        if points is None:
            return "points_required", f"send points: {allowed}"
        if points % self.points:
            return "points_off_step", f"{points} points is not a whole step; send {allowed}"
        if points < self.lowest:
            return "points_below_minimum", f"{points} points is below the minimum; send {allowed}"
        if self.max_points is not None and points > self.max_points:
            return "points_above_maximum", f"{points} points is above the maximum; send {allowed}"
        if points > balance:
            return (
                "insufficient_points",
                f"{points} points asked, the balance is {balance}; send at most the balance "
                f"({allowed})",
            )
        return None
