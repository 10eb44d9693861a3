"""One customer's loyalty state: the document the rules read and return, frozen and pure.

Everything a rule needs to decide a message lives here: the points lots and balance, points
earned (two different quantities: the spendable balance and a qualification metric), stamps,
per-order records of exactly what each order earned (so refunds reverse recorded values, not
today's rules), the qualification counters (``models/tally.py``: no rule scans the history),
the tier and why the customer holds it, reward grants and the idempotency memory.

Idempotency has no horizon, and the document stays bounded (docs/domain.md, "Idempotency"):

* ``applied_ids`` is a ring of the last ``APPLIED_IDS_LIMIT`` message ids applied to this
  customer (accepted or refused), persisted in the document;
* ``known_ids`` is transient (never persisted, never dumped): before ``decide`` the store fills
  it with those of the batch's ids (``models.decide.applied_keys``) that it finds in its archive
  of ids that fell off the ring (``Decision.forgotten_ids``, archived before the update);
* ``has_applied`` asks both, so a resend is caught however long ago the first copy came;
* order messages are also deduplicated by business key on the order record the message
  references (the store loads archived records back by ``order_id``): ``order.paid`` by
  ``order_id``, ``order.refunded`` by ``refund_id``, ``order.cancelled`` by the order's
  ``cancelled`` flag.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.order_record import (
    EntryGrantRef,
    OrderLine,
    OrderRecord,
    OrderTriggers,
    PointsScope,
    TierSnapshot,
    TierSource,
)
from models.outputs import Cause
from models.reward_value import RewardValue
from models.tally import Qualifying

__all__ = [
    "APPLIED_IDS_LIMIT",
    "ActivityEntry",
    "CustomerState",
    "CustomerStatus",
    "EntryGrantRef",
    "GrantOrigin",
    "GrantStatus",
    "GrantWithdrawal",
    "OrderLine",
    "OrderRecord",
    "OrderTriggers",
    "PendingPoints",
    "PointsLot",
    "PointsScope",
    "RewardGrant",
    "TierSnapshot",
    "TierSource",
]

APPLIED_IDS_LIMIT = 512
"""How many recent message ids one customer remembers (at 200 chars max, about 100 KB)."""

CustomerStatus = Literal["active", "removed", "forgotten"]
GrantStatus = Literal["issued", "used", "revoked"]
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
    reminded: bool = False
    """A ``points_expiring`` reminder was requested for this lot (one per lot)."""


class PendingPoints(_Frozen):
    """Points an order earned that are not spendable yet (``earn.points_pending_days``).

    At ``confirm_at`` they become a points lot with the same ``lot_id`` (expiring at
    ``expires_at``, counted from the confirmation); a refund inside the window takes them first.
    """

    lot_id: str
    order_id: str
    amount: int = Field(ge=0)
    earned_at: datetime
    confirm_at: datetime
    expires_at: datetime | None = None
    cause: Cause


class GrantWithdrawal(_Frozen):
    """Why a used entry reward no longer stands: the order that reached its tier fell."""

    order_id: str
    tier: str


class RewardGrant(_Frozen):
    """A reward the customer holds (or held); ``grant_id`` is derived from its cause.

    ``code`` is what the customer shows at checkout (``models.reward_codes``); ``origin`` says
    how it came: a tier's entry reward, a full stamp card, or a redemption (which spent
    ``cost_points`` or ``cost_stamps``, given back if the grant is revoked unused).
    """

    grant_id: str
    reward_id: str
    code: str
    status: GrantStatus
    origin: GrantOrigin
    granted_at: datetime
    cause: Cause
    cost_points: int | None = None
    cost_stamps: int | None = None
    used_at: datetime | None = None
    used_on_order: str | None = None
    value: RewardValue | None = None
    """What the coupon is worth, copied from the catalog when granted."""
    valid_until: datetime | None = None
    """When the coupon stops being valid (granted at + the reward's ``valid_days``)."""
    withdrawn: GrantWithdrawal | None = None
    """Set on an entry reward whose own order fell while the reward was used: when the order
    it was used on falls too, the reward is revoked rather than given back."""


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
    forgotten_at: datetime | None = None
    """Set by ``customer.forget``: email and names are erased, balances stay."""
    joined_at: datetime
    groups: tuple[str, ...] = ()

    points_lots: tuple[PointsLot, ...] = ()
    """Lots that still hold points, in spend order (soonest expiry first, never-expiring last)."""
    points_balance: int = Field(default=0, ge=0)
    """Spendable points: the sum of the lots, kept beside them so reading it costs nothing."""
    points_earned: int = 0
    """Points earned over the customer's lifetime, net of reversals (the qualification metric)."""
    points_pending_lots: tuple[PendingPoints, ...] = ()
    """Points from orders not confirmed yet, soonest confirmation first."""
    points_pending: int = Field(default=0, ge=0)
    """Their sum: earned (and counted toward tiers) but not spendable yet."""

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
    tier_underneath: TierSnapshot | None = None
    """While a temporary tier runs: the tier held before it and how, to return to at its end."""

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
    tier_reminded_end: datetime | None = None
    """The tier ending (expiry or hold end) a ``tier_expiring`` reminder was handled for."""
    reminder_at: datetime | None = None
    """Next moment a reminder is due (``points_expiring``, ``tier_expiring``)."""

    rewards: tuple[RewardGrant, ...] = ()
    entry_grants_unbacked: tuple[EntryGrantRef, ...] = ()
    """Unused entry grants whose order was reversed while the customer still held their tier
    (held up by other activity): revoked by a later reversal that drops the customer below it."""
    entry_rewards_received: tuple[str, ...] = ()
    """Tiers whose entry rewards the customer holds (granted and not taken back with an order).

    With the program's ``entry_rewards_per_tier: once`` a tier listed here grants no entry
    rewards again, unless an admin asks for them explicitly.
    """

    applied_ids: tuple[str, ...] = ()
    """The most recent applied message ids, oldest first (a ring of ``APPLIED_IDS_LIMIT``)."""
    known_ids: frozenset[str] = Field(default=frozenset(), exclude=True)
    """Ids of this batch the store found in its id archive; transient, never persisted."""
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
        ending, the next moment activity leaves the qualification period (tier review),
        pending points being confirmed, and a reminder falling due.
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
        if self.points_pending_lots:
            due.append(self.points_pending_lots[0].confirm_at)
        if self.reminder_at is not None:
            due.append(self.reminder_at)
        return min(due, default=None)

    def order(self, order_id: str) -> OrderRecord | None:
        """The record of this order, if it was paid by this customer."""
        ids = list(map(attrgetter("order_id"), self.orders))  # a C loop: asked on every order
        return self.orders[ids.index(order_id)] if order_id in ids else None

    def holds_tier_at(self, at: datetime) -> bool:
        """Whether the current tier is protected from automatic downgrade at ``at``."""
        return self.tier_held and (self.tier_hold_until is None or at < self.tier_hold_until)

    def has_applied(self, key: str) -> bool:
        """Whether this id was applied: in the recent ring or found in the store's archive."""
        return key in self.known_ids or key in self.applied_ids

    def with_known_ids(self, ids: Iterable[str]) -> CustomerState:
        """Return the state told which of a batch's ids the store's archive holds."""
        return self.model_copy(update={"known_ids": frozenset(ids)})

    def received_entry_rewards(self, tier: str) -> bool:
        """Whether the customer already holds the entry rewards of this tier."""
        return tier in self.entry_rewards_received

    def grant(self, grant_id: str) -> RewardGrant | None:
        """The grant with this id, if the customer has it."""
        return next((g for g in self.rewards if g.grant_id == grant_id), None)

    def grant_by_code(self, code: str) -> RewardGrant | None:
        """The customer's grant with this code (as issued), if any."""
        return next((g for g in self.rewards if g.code == code), None)

    def remember(self, *keys: str) -> tuple[CustomerState, tuple[str, ...]]:
        """Return the state with these ids remembered (version bumped) and the ids forgotten.

        The forgotten ones fell off the ring; the store archives them before it writes the
        state, and they are also kept in ``known_ids`` so the rest of the batch still sees them.
        """
        ring = (*self.applied_ids, *(k for k in dict.fromkeys(keys) if k not in self.applied_ids))
        cut = max(0, len(ring) - APPLIED_IDS_LIMIT)
        forgotten = ring[:cut]
        state = self.model_copy(
            update={
                "applied_ids": ring[cut:],
                "known_ids": self.known_ids | frozenset(forgotten) if forgotten else self.known_ids,
                "version": self.version + 1,
            }
        )
        return state, forgotten

    def public_view(self) -> dict[str, Any]:
        """The read-interface fields of the contract (activity comes from the activity store)."""
        return {
            "customer_id": self.customer_id,
            "email": self.email,
            "status": self.status,
            "points_balance": self.points_balance,
            "points_pending": self.points_pending,
            "points_earned": self.points_earned,
            "stamps_balance": self.stamps_balance,
            "tier": self.tier,
            "tier_expires_at": self.tier_expires_at,
            "lifetime_spend": str(self.lifetime_spend),
            "rewards": [
                {
                    "grant_id": g.grant_id,
                    "reward_id": g.reward_id,
                    "code": g.code,
                    "origin": g.origin,
                    "status": g.status,
                }
                for g in self.rewards
            ],
        }
