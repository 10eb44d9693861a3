"""The rewards issuer: reward grants become coupons a storefront's checkout can honour.

The coupon registry is the MongoDB collection ``coupons``, one document per grant (``_id`` is
the grant id) with a **unique index on ``code``**: who holds it, which reward, what it is worth,
until when, and its status, mirrored from ``reward.granted`` (issued), ``reward.used`` (used),
``reward.revoked`` (revoked) and ``reward.reinstated`` (issued again). The customer documents
own the grants; the registry is a read model of them and ``rebuild`` recreates it from them.

Idempotent by message id: each coupon keeps the ids of the events applied to it, and an event
updates a coupon only if its id is not among them. A second grant with a code another grant
holds is refused by the unique index, logged as an error, counted, and dead-lettered as
``duplicate_code``: the first holder keeps the code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError
from pymongo import ASCENDING, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError

from consumers.loop import DONE, DependencyUnavailableError, Item, Outcome, Reject, Retry
from consumers.metrics import ConsumerMetrics
from models.reward_codes import normalize_code
from models.state import CustomerState, RewardGrant
from topics import names

log = structlog.get_logger(__name__)

COUPONS_COLLECTION = "coupons"
EVENTS_KEPT = 20
"""Event ids remembered per coupon; a coupon sees a handful of events in its life."""

CouponStatus = Literal["issued", "used", "revoked"]
CheckStatus = Literal["valid", "used", "revoked", "expired", "unknown"]
_STATUS_OF_EVENT: dict[str, CouponStatus] = {
    "reward.used": "used",
    "reward.revoked": "revoked",
    "reward.reinstated": "issued",
}


class _Data(BaseModel):
    model_config = ConfigDict(extra="ignore")
    grant_id: str
    reward_id: str | None = None
    code: str | None = None
    value: dict[str, Any] | None = None
    valid_until: datetime | None = None
    order_id: str | None = None
    reason: str | None = None


class RewardEvent(BaseModel):
    """The fields of a reward output message the registry reads."""

    model_config = ConfigDict(extra="ignore")
    id: str
    type: str
    customer_id: str
    occurred_at: datetime
    data: _Data


async def ensure_indexes(coupons: AsyncCollection[dict[str, Any]]) -> None:
    """Create the registry's indexes (idempotent): unique code, and coupons by customer."""
    # On the code as a checkout compares it (case and spaces ignored): two codes that differ
    # only there would be one code at the till.
    await coupons.create_index([("code_key", ASCENDING)], unique=True, name="code_unique")
    await coupons.create_index([("customer_id", ASCENDING)], name="customer")


def coupon_from_grant(customer: CustomerState, grant: RewardGrant, now: datetime) -> dict[str, Any]:
    """Return the coupon document of a customer's grant (the customer document owns it)."""
    return {
        "_id": grant.grant_id,
        "code": grant.code,
        "code_key": normalize_code(grant.code),
        "customer_id": customer.customer_id,
        "reward_id": grant.reward_id,
        "value": grant.value.model_dump(mode="json") if grant.value is not None else None,
        "valid_until": grant.valid_until,
        "status": grant.status,
        "granted_at": grant.granted_at,
        "used_at": grant.used_at,
        "order_id": grant.used_on_order,
        "updated_at": now,
        "events": [],
    }


class CouponRegistry:
    """Reads and writes of the ``coupons`` collection."""

    def __init__(self, coupons: AsyncCollection[dict[str, Any]]) -> None:
        self.coupons = coupons

    async def grant(self, event: RewardEvent) -> str | None:
        """Insert the coupon of a grant; return the holder's grant id if the code is taken."""
        data = event.data
        key = normalize_code(data.code or "")
        document = {
            "_id": data.grant_id,
            "code": data.code,
            "code_key": key,
            "customer_id": event.customer_id,
            "reward_id": data.reward_id,
            "value": data.value,
            "valid_until": data.valid_until,
            "status": "issued",
            "granted_at": event.occurred_at,
            "updated_at": event.occurred_at,
            "events": [event.id],
        }
        try:
            await self.coupons.insert_one(document)
        except DuplicateKeyError:
            holder = await self.coupons.find_one({"code_key": key}, {"_id": 1})
            if holder is not None and holder["_id"] != data.grant_id:
                return str(holder["_id"])
            # Same grant again (a replay): the coupon is already there.
        return None

    async def apply(self, event: RewardEvent, status: CouponStatus) -> bool:
        """Set the coupon's status from an event once; return False if no coupon exists."""
        update: dict[str, Any] = {"status": status, "updated_at": event.occurred_at}
        stamp = {"used": "used_at", "revoked": "revoked_at", "issued": "reinstated_at"}[status]
        update[stamp] = event.occurred_at
        if event.data.order_id is not None and status == "used":
            update["order_id"] = event.data.order_id
        result = await self.coupons.update_one(
            {"_id": event.data.grant_id, "events": {"$ne": event.id}},
            {"$set": update, "$push": {"events": {"$each": [event.id], "$slice": -EVENTS_KEPT}}},
        )
        if result.matched_count:
            return True
        return await self.coupons.count_documents({"_id": event.data.grant_id}, limit=1) > 0

    async def find(self, code: str) -> dict[str, Any] | None:
        """Return the coupon with this code as a checkout typed it (case, spaces ignored)."""
        return await self.coupons.find_one({"code_key": normalize_code(code)})

    async def rebuild(self, customers: AsyncIterator[CustomerState], *, page: int = 200) -> int:
        """Recreate every coupon from the customer documents; return how many were written."""
        now = datetime.now(UTC)
        written = 0
        writes: list[ReplaceOne[dict[str, Any]]] = []
        async for customer in customers:
            for grant in customer.rewards:
                document = coupon_from_grant(customer, grant, now)
                writes.append(ReplaceOne({"_id": document["_id"]}, document, upsert=True))
            if len(writes) >= page:
                await self.coupons.bulk_write(writes, ordered=False)
                written, writes = written + len(writes), []
        if writes:
            await self.coupons.bulk_write(writes, ordered=False)
            written += len(writes)
        return written


@dataclass(frozen=True)
class CouponCheck:
    """What a checkout learns about a code: its status and why."""

    code: str
    status: CheckStatus
    reason: str
    customer_id: str | None = None
    reward_id: str | None = None
    value: dict[str, Any] | None = None
    valid_until: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        """Return the answer of ``GET /coupons/<code>`` and ``loyalty reward check --json``."""
        return {
            "code": self.code,
            "status": self.status,
            "valid": self.status == "valid",
            "reason": self.reason,
            "customer_id": self.customer_id,
            "reward_id": self.reward_id,
            "value": self.value,
            "valid_until": None if self.valid_until is None else self.valid_until.isoformat(),
        }


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def judge(code: str, coupon: dict[str, Any] | None, now: datetime) -> CouponCheck:
    """Decide whether a checkout may accept this code now, and say why."""
    if coupon is None:
        return CouponCheck(code, "unknown", "no reward has this code; check how it was typed")
    holder = {
        "code": coupon["code"],
        "customer_id": coupon.get("customer_id"),
        "reward_id": coupon.get("reward_id"),
        "value": coupon.get("value"),
        "valid_until": _aware(coupon.get("valid_until")),
    }
    status = coupon.get("status")
    if status == "used":
        order = f" (order {coupon['order_id']})" if coupon.get("order_id") else ""
        at = coupon.get("used_at")
        when = f" on {_day(_aware(at))}" if isinstance(at, datetime) else ""
        return CouponCheck(**holder, status="used", reason=f"already used{when}{order}")
    if status == "revoked":
        at = coupon.get("revoked_at")
        when = f" on {_day(_aware(at))}" if isinstance(at, datetime) else ""
        return CouponCheck(**holder, status="revoked", reason=f"revoked{when}")
    valid_until = holder["valid_until"]
    if valid_until is not None and valid_until <= now:
        return CouponCheck(**holder, status="expired", reason=f"expired on {_day(valid_until)}")
    reason = f"valid until {_day(valid_until)}" if valid_until is not None else "valid, no expiry"
    return CouponCheck(**holder, status="valid", reason=reason)


def _aware(value: Any) -> Any:
    # MongoDB keeps UTC without an offset; the client may hand back naive datetimes.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class RewardsIssuer:
    """Consumer of ``loyalty.rewards`` that keeps the coupon registry."""

    name = "rewards"
    topics: tuple[str, ...] = (names.REWARDS,)
    types: frozenset[str] = frozenset({"reward.granted", *_STATUS_OF_EVENT})

    def __init__(self, registry: CouponRegistry, metrics: ConsumerMetrics) -> None:
        self.registry = registry
        self.metrics = metrics

    async def ready(self) -> bool:
        """Return whether MongoDB answers."""
        try:
            await self.registry.coupons.database.command("ping")
        except PyMongoError:
            return False
        return True

    async def process(self, items: Sequence[Item]) -> list[Outcome]:
        """Apply each reward event to the registry, in order."""
        outcomes: list[Outcome] = []
        for item in items:
            try:
                event = RewardEvent.model_validate(item.envelope.body)
            except ValidationError as exc:
                outcomes.append(Reject("invalid_message", f"not a reward event: {exc}"))
                continue
            try:
                outcomes.append(await self._apply(event))
            except ConnectionFailure as exc:
                raise DependencyUnavailableError(f"MongoDB: {exc}") from exc
            except PyMongoError as exc:
                outcomes.append(Retry(f"MongoDB refused the write: {exc}"))
        return outcomes

    async def _apply(self, event: RewardEvent) -> Outcome:
        if event.type == "reward.granted":
            if not event.data.code:
                return Reject("invalid_message", "reward.granted carries no code")
            holder = await self.registry.grant(event)
            if holder is not None:
                self.metrics.duplicate_codes.inc()
                log.error(
                    "duplicate_reward_code",
                    grant_id=event.data.grant_id,
                    holder=holder,
                    customer_id=event.customer_id,
                    message_id=event.id,
                )
                return Reject(
                    "duplicate_code",
                    f"code of grant {event.data.grant_id!r} is already held by grant {holder!r}; "
                    "the registry kept the first holder. Check LOYALTY_REWARD_CODE_KEY and the "
                    "code format: two grants must never share a code",
                )
            self.metrics.coupons.labels("granted").inc()
            return DONE
        status = _STATUS_OF_EVENT[event.type]
        if not await self.registry.apply(event, status):
            return Reject(
                "unknown_grant",
                f"{event.type} for grant {event.data.grant_id!r}, which the coupon registry does "
                "not hold; run `loyalty reward rebuild` to recreate it from the customers",
            )
        self.metrics.coupons.labels(event.type.removeprefix("reward.")).inc()
        return DONE
