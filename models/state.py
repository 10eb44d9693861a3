"""One customer's loyalty state: the document the rules read and return, frozen and pure.

Everything a rule needs to decide a message lives here: the points lots and balance, points
earned (two different quantities: the spendable balance and a qualification metric), stamps,
per-order records of exactly what each order earned (so refunds reverse recorded values, not
today's rules), the qualification counters (``models/tally.py``: no rule scans the history),
the tier and why the customer holds it, reward grants and the idempotency memory.

Idempotency memory is bounded:

* ``applied_ids`` keeps the last ``APPLIED_IDS_LIMIT`` message ids applied to this customer
  (accepted or refused), oldest dropped first;
* order messages are also deduplicated by business key for as long as the order record exists:
  ``order.paid`` by ``order_id``, ``order.refunded`` by ``refund_id``, ``order.cancelled`` by the
  order's ``cancelled`` flag, so they need no slot in the ring.

A duplicate older than the ring and not an order message would be applied again; the worker's
per-partition offsets (DESIGN.md invariant 1) cover redelivery, so only an upstream resend more
than ``APPLIED_IDS_LIMIT`` messages later for the same customer escapes both.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.outputs import Cause
from models.tally import Qualifying

APPLIED_IDS_LIMIT = 512
"""How many recent message ids one customer remembers (at 200 chars max, about 100 KB)."""

CustomerStatus = Literal["active", "removed"]
TierSource = Literal["rules", "manual", "import", "temporary"]
GrantStatus = Literal["issued", "redeemed", "revoked", "used"]
GrantOrigin = Literal["entry", "card", "redemption"]


class _Frozen(BaseModel):
    """Immutable, strict-about-extras base for state parts."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class PointsLot(_Frozen):
    """Points earned together, spent or expired together; ``amount`` is what remains."""

    lot_id: str
    amount: int = Field(ge=0)
    original: int = Field(ge=0)
    earned_at: datetime
    expires_at: datetime | None = None
    cause: Cause


class OrderLine(_Frozen):
    """A line of a paid order: what it earned in stamps and how much of it was refunded."""

    sku: str
    quantity: int = Field(ge=1)
    unit_price: Decimal
    stamps_per_unit: int = Field(default=0, ge=0)
    refunded_quantity: int = Field(default=0, ge=0)


class OrderRecord(_Frozen):
    """What one order earned and how much of it has been reversed so far."""

    order_id: str
    paid_at: datetime
    total: Decimal
    currency: str
    lines: tuple[OrderLine, ...] = ()
    points_earned: int = Field(ge=0)
    stamps_earned: int = Field(ge=0)
    points_lot_id: str | None = None
    refunded_amount: Decimal = Decimal(0)
    points_reversed: int = Field(default=0, ge=0)
    stamps_reversed: int = Field(default=0, ge=0)
    refund_ids: tuple[str, ...] = ()
    cancelled: bool = False

    @property
    def fully_reversed(self) -> bool:
        """Whether the order no longer counts: cancelled or refunded in full."""
        # A refund must exist: a free order (total 0) still counts until refunded or cancelled.
        if self.cancelled:
            return True
        if not self.refund_ids or self.refunded_amount < self.total:
            return False
        # A free order has no amount to measure by: it is refunded in full when its items are.
        return self.total > 0 or all(ln.refunded_quantity >= ln.quantity for ln in self.lines)

    @property
    def net_amount(self) -> Decimal:
        """What the order still counts for in spend."""
        if self.cancelled:
            return Decimal(0)
        return max(Decimal(0), self.total - self.refunded_amount)


class RewardGrant(_Frozen):
    """A reward the customer holds (or held); ``grant_id`` is derived from its cause."""

    grant_id: str
    reward_id: str
    status: GrantStatus
    origin: GrantOrigin
    granted_at: datetime
    cause: Cause
    cost_points: int | None = None
    cost_stamps: int | None = None


class ActivityEntry(_Frozen):
    """One line of the customer's activity log; ``activity_id`` makes re-inserting a no-op."""

    activity_id: str
    at: datetime
    kind: str
    delta: int | None = None
    internal_note: str | None = None
    customer_note: str | None = None
    cause: Cause
    details: dict[str, Any] = Field(default_factory=dict)


class CustomerState(_Frozen):
    """Everything known about one customer in the program; one document in the store.

    Persist it with ``model_dump(mode="json")`` (money as strings, times as RFC 3339) and load
    it with ``model_validate``; fields the store keeps beside it in the same document (``_id``,
    outbox, partition offsets) are ignored on load.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    customer_id: str
    email: str
    email_normalized: str
    first_name: str | None = None
    last_name: str | None = None
    accepts_email: bool = True
    status: CustomerStatus = "active"
    removed_at: datetime | None = None
    joined_at: datetime
    groups: tuple[str, ...] = ()

    points_lots: tuple[PointsLot, ...] = ()
    """Lots that still hold points, in spend order (soonest expiry first, never-expiring last)."""
    points_balance: int = Field(default=0, ge=0)
    """Spendable points: the sum of the lots, kept beside them so reading it costs nothing."""
    points_earned: int = 0
    """Points earned over the customer's lifetime, net of reversals (the qualification metric)."""

    stamps_balance: int = Field(default=0, ge=0)
    """The one pool of stamps; with a stamp card it is also the progress on the current card."""
    stamp_cards_completed: int = Field(default=0, ge=0)

    lifetime_spend: Decimal = Decimal(0)
    order_count: int = Field(default=0, ge=0)
    """Orders that still count: paid and neither cancelled nor refunded in full."""
    orders: tuple[OrderRecord, ...] = ()
    """The order records the rules need now (the store archives older ones and loads back
    those a message names); no rule reads the whole list. Kept as a list, not a dict: order
    ids may hold characters MongoDB forbids in keys."""
    qualifying: Qualifying = Qualifying()
    """All the customer's activity toward tiers, by qualification period."""
    downgrade_qualifying: Qualifying | None = None
    """After a manual downgrade: the activity from it on, the only one that counts for the
    rules (kept through later moves, until another manual downgrade restarts it)."""
    temporary_qualifying: Qualifying | None = None
    """During a temporary downgrade: the activity from it on, what counts until it ends."""

    tier: str | None = None
    tier_source: TierSource = "rules"
    tier_since: datetime | None = None
    tier_expires_at: datetime | None = None
    tier_held: bool = False
    """Automatic evaluation may not drop the customer below this tier (see tier_hold_until)."""
    tier_hold_until: datetime | None = None
    """End of the hold: the membership period or the temporary tier's expiry; None: no end."""
    tier_review_at: datetime | None = None
    """Next moment earlier activity leaves the qualification period and the tier may drop."""

    rewards: tuple[RewardGrant, ...] = ()

    applied_ids: tuple[str, ...] = ()
    version: int = 0

    @property
    def active(self) -> bool:
        """Whether the customer is in the program (earns, receives email)."""
        return self.status == "active"

    @property
    def counting(self) -> Qualifying:
        """The activity that counts toward tiers now (see the three ``*qualifying`` fields)."""
        return self.temporary_qualifying or self.downgrade_qualifying or self.qualifying

    @property
    def qualify_since(self) -> datetime | None:
        """After a manual downgrade: only activity from here on counts toward a tier."""
        return self.counting.since

    @property
    def next_due_at(self) -> datetime | None:
        """When this customer next needs a time event.

        The soonest of: a points lot expiring, a temporary tier ending, a membership hold
        ending, and the next moment activity leaves the qualification period (tier review).
        """
        if not self.active:
            return None
        # Lots are kept in spend order: the first one expires soonest (if any expires).
        first_lot = self.points_lots[0].expires_at if self.points_lots else None
        due = [] if first_lot is None else [first_lot]
        if self.tier_expires_at is not None:
            due.append(self.tier_expires_at)
        elif self.tier_held and self.tier_hold_until is not None:
            due.append(self.tier_hold_until)
        if self.tier_review_at is not None:
            due.append(self.tier_review_at)
        return min(due, default=None)

    def order(self, order_id: str) -> OrderRecord | None:
        """The record of this order, if it was paid by this customer."""
        return next((o for o in self.orders if o.order_id == order_id), None)

    def holds_tier_at(self, at: datetime) -> bool:
        """Whether the current tier is protected from automatic downgrade at ``at``."""
        return self.tier_held and (self.tier_hold_until is None or at < self.tier_hold_until)

    def has_applied(self, message_id: str) -> bool:
        """Whether this message id is in the bounded memory of applied ids."""
        return message_id in self.applied_ids

    def grant(self, grant_id: str) -> RewardGrant | None:
        """The grant with this id, if the customer has it."""
        return next((g for g in self.rewards if g.grant_id == grant_id), None)

    def remember(self, message_id: str) -> CustomerState:
        """Return the state with this message id remembered and the version bumped."""
        ids = (*self.applied_ids, message_id)[-APPLIED_IDS_LIMIT:]
        return self.model_copy(update={"applied_ids": ids, "version": self.version + 1})

    def public_view(self) -> dict[str, Any]:
        """The read-interface fields of the contract (activity comes from the activity store)."""
        return {
            "customer_id": self.customer_id,
            "email": self.email,
            "status": self.status,
            "points_balance": self.points_balance,
            "points_earned": self.points_earned,
            "stamps_balance": self.stamps_balance,
            "tier": self.tier,
            "tier_expires_at": self.tier_expires_at,
            "lifetime_spend": str(self.lifetime_spend),
            "rewards": [
                {"grant_id": g.grant_id, "reward_id": g.reward_id, "status": g.status}
                for g in self.rewards
            ],
        }
