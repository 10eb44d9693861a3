"""Program automations: "when a paid order matches these conditions, manage the tier like so"."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from models.messages import ManageTierData, OrderPaidData
from models.values import ConfigModel, ExtendedValue, Name

Operator = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in"]
ORDER_FIELDS = ("order_id", "total", "currency", "item_count")
EXTENDED_PREFIX = "extended_fields."


def order_field(order: OrderPaidData, field: str) -> str | bool | int | Decimal | None:
    """Return the value of ``field`` on a paid order (``None`` when an extended field is absent)."""
    if field.startswith(EXTENDED_PREFIX):
        return order.extended_fields.get(field.removeprefix(EXTENDED_PREFIX))
    if field == "item_count":
        return sum(item.quantity for item in order.items)
    value: str | Decimal = getattr(order, field)
    return value


def _as_number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, str):
        try:
            number = Decimal(value)
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _equal(actual: Any, expected: Any) -> bool:
    left, right = _as_number(actual), _as_number(expected)
    if left is not None and right is not None:
        return left == right
    return bool(actual == expected)


class Condition(ConfigModel):
    """One test on an order: ``field`` is an order field or ``extended_fields.<name>``."""

    field: Name
    op: Operator = "eq"
    value: ExtendedValue | tuple[ExtendedValue, ...]

    @model_validator(mode="after")
    def _known_field_and_shape(self) -> Condition:
        if not (self.field in ORDER_FIELDS or self.field.startswith(EXTENDED_PREFIX)):
            raise PydanticCustomError(
                "condition_field",
                "field {field} is not an order field; use one of {known} or extended_fields.<name>",
                {"field": repr(self.field), "known": ", ".join(ORDER_FIELDS)},
            )
        if (self.op == "in") != isinstance(self.value, tuple):
            raise PydanticCustomError(
                "condition_value", "op 'in' takes a list of values; the other ops take one", {}
            )
        return self

    def matches(self, order: OrderPaidData) -> bool:
        """Return whether the order passes this test; a missing field never matches."""
        actual = order_field(order, self.field)
        if actual is None:
            return False
        if isinstance(self.value, tuple):
            return any(_equal(actual, candidate) for candidate in self.value)
        if self.op == "eq":
            return _equal(actual, self.value)
        if self.op == "ne":
            return not _equal(actual, self.value)
        left, right = _as_number(actual), _as_number(self.value)
        if left is None or right is None:
            return False
        return {
            "gt": left > right,
            "gte": left >= right,
            "lt": left < right,
            "lte": left <= right,
        }[self.op]


class Automation(ConfigModel):
    """When every condition holds for a paid order, run ``manage_tier`` for its customer."""

    name: Name
    when: Annotated[tuple[Condition, ...], Field(min_length=1)]
    manage_tier: ManageTierData

    @model_validator(mode="after")
    def _own_customer(self) -> Automation:
        if self.manage_tier.group_id is not None:
            raise PydanticCustomError(
                "automation_group",
                "manage_tier.group_id: automations act on the order's customer; drop group_id",
                {},
            )
        return self

    def matches(self, order: OrderPaidData) -> bool:
        """Return whether the order meets every condition."""
        return all(condition.matches(order) for condition in self.when)
