"""One paid order's record: what it earned, what it set off, and how much is reversed.

Kept per order in the customer's state (recent ones in the hot document, older ones archived
by the store and loaded back when a message references them), so a refund or cancellation
needs only the record of its own order.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from models.state import CustomerState

TierSource = Literal["rules", "manual", "import", "temporary"]
PointsScope = Literal["order", "items"]


class _Frozen(BaseModel):
    """Immutable, strict-about-extras base for state parts."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class OrderLine(_Frozen):
    """A line of a paid order: what it earned in stamps and how much of it was refunded."""

    sku: str
    quantity: int = Field(ge=1)
    unit_price: Decimal
    stamps_per_unit: int = Field(default=0, ge=0)
    refunded_quantity: int = Field(default=0, ge=0)
    earns_points: bool = True
    """Whether the line counted in the points base (earning filters); a refund of a line that
    earned nothing reverses no points."""


class TierSnapshot(_Frozen):
    """The customer's tier fields at one moment; the names match ``CustomerState``'s."""

    tier: str | None = None
    tier_source: TierSource = "rules"
    tier_since: datetime | None = None
    tier_expires_at: datetime | None = None
    tier_held: bool = False
    tier_hold_until: datetime | None = None
    tier_underneath: TierSnapshot | None = None
    """The tier a temporary one covers (see ``CustomerState.tier_underneath``)."""

    @classmethod
    def of(cls, state: CustomerState) -> TierSnapshot:
        """Capture the tier fields of ``state``."""
        # The state's fields are valid already: copied, not validated again.
        return cls.model_construct(**{name: getattr(state, name) for name in cls.model_fields})

    def fields(self) -> dict[str, Any]:
        """The fields to put back into a state (``step.update(**snapshot.fields())``)."""
        return {name: getattr(self, name) for name in type(self).model_fields}


class EntryGrantRef(_Frozen):
    """An entry-reward grant an order triggered, and the tier whose entry issued it."""

    tier: str
    grant_id: str
    order_id: str | None = None
    """The order that triggered it, once that order is reversed (``entry_grants_unbacked``)."""


class OrderTriggers(_Frozen):
    """What a paid order set off beyond its points and stamps, so a reversal can take it back.

    Kept on the order record itself: reversing needs no other order (the store may have
    archived them) and no scan of the history.
    """

    tier_before: TierSnapshot
    """The tier fields just before the order moved the tier."""
    tier_after: str | None
    """The tier the order left the customer in (after the rules and any automation)."""
    tier_reached: str | None = None
    """The tier the rules moved the customer up to because of this order."""
    automation_tier: str | None = None
    """The tier an automation put the customer in because of this order (trial, temporary)."""
    entry_grants: tuple[EntryGrantRef, ...] = ()


class OrderRecord(_Frozen):
    """What one order earned and how much of it has been reversed so far.

    Refunds are kept in two parts so that item refunds reverse exactly those items:
    ``refunded_by_amount`` (refunds that named an amount) and each line's
    ``refunded_quantity`` (refunds that named items). ``refunded_share`` combines them into
    the exact share of the order that no longer stands; ``refunded_amount`` is that share in
    money (what leaves the spend).
    """

    order_id: str
    paid_at: datetime
    total: Decimal
    currency: str
    lines: tuple[OrderLine, ...] = ()
    points_scope: PointsScope = "order"
    """What earned the points: the whole ``order`` (less shipping and tax), or only the
    ``items`` that pass the program's earning filters."""
    points_earned: int = Field(ge=0)
    stamps_earned: int = Field(ge=0)
    points_lot_id: str | None = None
    shipping: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)
    refunded_amount: Decimal = Decimal(0)
    refunded_by_amount: Decimal = Decimal(0)
    refunded_in_full: bool = False
    points_reversed: int = Field(default=0, ge=0)
    stamps_reversed: int = Field(default=0, ge=0)
    refund_ids: tuple[str, ...] = ()
    cancelled: bool = False
    triggers: OrderTriggers | None = None
    used_grants: tuple[str, ...] = ()
    """Grants whose codes came with this order (``used`` on it): given back if it falls."""

    @property
    def items_value(self) -> Decimal:
        """The lines at their paid unit prices (before any order-level discount)."""
        return sum((line.unit_price * line.quantity for line in self.lines), Decimal(0))

    @property
    def goods(self) -> Decimal:
        """What the items were paid in all: the total less the shipping and tax it stated."""
        return self.total - self.shipping - self.tax

    @property
    def items_paid_factor(self) -> Fraction:
        """What each unit of the items' prices was actually paid, 0 to 1.

        The items were paid what the total leaves after shipping and tax. When they are worth
        more, the difference is an order-level discount spread over the items in proportion
        to their price (CONTRACT.md): each item was paid its price times this factor.
        Otherwise they were paid their price and the rest of the total belongs to no item.
        """
        value = self.items_value
        paid = self.goods
        if value <= 0 or paid >= value:
            return Fraction(1)
        return Fraction(max(paid, Decimal(0))) / Fraction(value)

    @property
    def refunded_share(self) -> Fraction:
        """The exact share of the order refunded so far, 0 to 1 (1: cancelled or in full)."""
        if self.cancelled or self.refunded_in_full:
            return Fraction(1)
        if not self.refund_ids:
            return Fraction(0)
        if self.total <= 0:
            # A free order has no amount to measure by: it is refunded in full with its items.
            return Fraction(int(all(ln.refunded_quantity >= ln.quantity for ln in self.lines)))
        by_items = sum(
            (line.unit_price * line.refunded_quantity for line in self.lines), Decimal(0)
        )
        by_items_paid = Fraction(by_items) * self.items_paid_factor
        share = (Fraction(self.refunded_by_amount) + by_items_paid) / Fraction(self.total)
        return min(share, Fraction(1))

    @property
    def points_share(self) -> Fraction:
        """The exact share of the order's points reversed so far, 0 to 1.

        Refunds by amount count against the total; refunded items against what earned the
        points: their paid share of the goods (scope ``order``), or of the qualifying items
        (scope ``items``; an item that earned nothing reverses nothing).
        """
        if self.cancelled or self.refunded_in_full:
            return Fraction(1)
        if not self.refund_ids or self.total <= 0:
            return self.refunded_share
        share = Fraction(self.refunded_by_amount) / Fraction(self.total)
        if self.points_scope == "items":
            earning = [line for line in self.lines if line.earns_points]
            listed = sum((ln.unit_price * ln.quantity for ln in earning), Decimal(0))
            named = sum((ln.unit_price * ln.refunded_quantity for ln in earning), Decimal(0))
            if listed > 0:
                share += Fraction(named) / Fraction(listed)
        elif self.goods > 0:
            named = sum((ln.unit_price * ln.refunded_quantity for ln in self.lines), Decimal(0))
            share += Fraction(named) * self.items_paid_factor / Fraction(self.goods)
        return min(share, Fraction(1))

    @property
    def fully_reversed(self) -> bool:
        """Whether the order no longer counts: cancelled or refunded in full."""
        return self.refunded_share >= 1

    @property
    def net_amount(self) -> Decimal:
        """What the order still counts for in spend."""
        if self.cancelled:
            return Decimal(0)
        return max(Decimal(0), self.total - self.refunded_amount)
