"""What stays in the hot customer document and what moves to the archives (pure).

The customer document holds the recent applied ids (the state's ring) and the recent orders.
Older ones move to the id and order archive collections. Only *committed* content ever moves:
what the document held when it was loaded (its version is ``loaded.version``). Anything this
batch created or changed stays in the document for now and moves on a later save, once it is
committed. So an archive write that is followed by a failed (conflicting) or crashed update
only ever copies facts that are already true; see docs/storage.md for the whole argument.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from models.state import APPLIED_IDS_LIMIT, CustomerState, OrderRecord
from store.repository import CustomerWrite


@dataclass(frozen=True)
class HotPlan:
    """The state to store in the document and what to archive before writing it."""

    state: CustomerState
    """The new state with only the hot orders and the stored id ring."""
    archive_ids: tuple[str, ...]
    archive_orders: tuple[OrderRecord, ...]
    archive_version: int
    """The committed document version the archived content comes from."""


def plan_write(
    write: CustomerWrite, hot_orders: int, *, order_slack: int = 0, id_slack: int = 0
) -> HotPlan:
    """Split a write into the hot document's state and the committed content to archive.

    Archiving is by water marks: the document keeps up to ``hot_orders + order_slack`` orders
    and ``APPLIED_IDS_LIMIT + id_slack`` ids; only a save that would go past one of these
    high-water marks archives, and then down to the low-water mark (``hot_orders`` orders,
    the rules' own ring of the last ``APPLIED_IDS_LIMIT`` ids) in one go. So a customer with a
    long history archives a chunk of about ``slack`` records once every ``slack`` events
    instead of one record per event, and each chunk is one archive document
    (``store.mongo_archive``). A slack of 0 archives everything beyond the low-water mark at
    every save.
    """
    loaded = write.loaded
    new = write.state
    committed_ring = loaded.hot_ring if loaded else ()
    ring = _stored_ring(new.applied_ids, committed_ring, write.applied_ids)
    in_ring = set(ring)
    retired = tuple(i for i in committed_ring if i not in in_ring)
    # Ids leave the rules' ring only by being pushed out of it (``CustomerState.remember``):
    # ``retired`` were applied and committed, so keeping them stored is as true as archiving.
    if id_slack <= 0 or len(retired) + len(ring) > APPLIED_IDS_LIMIT + id_slack:
        archive_ids: tuple[str, ...] = retired  # down to the rules' ring (plus carried ids)
    else:
        archive_ids, ring = (), (*retired, *ring)

    committed = {o.order_id: o for o in loaded.state.orders} if loaded else {}
    hot_before = loaded.hot_order_ids if loaded else frozenset()
    unsettled = {o.order_id for o in new.orders if committed.get(o.order_id) != o}
    recent = {o.order_id for o in most_recent(new.orders, hot_orders)}
    keep = recent | unsettled
    held = keep | {o.order_id for o in new.orders if o.order_id in hot_before}
    if order_slack > 0 and len(held) <= hot_orders + order_slack:
        keep = held  # below the high-water mark: nothing moves
    hot = tuple(o for o in new.orders if o.order_id in keep)
    archive_orders = tuple(
        o for o in new.orders if o.order_id not in keep and o.order_id in hot_before
    )
    state = new.model_copy(update={"orders": hot, "applied_ids": ring})
    return HotPlan(
        state=state,
        archive_ids=archive_ids,
        archive_orders=archive_orders,
        archive_version=loaded.version if loaded else 0,
    )


def _stored_ring(
    ring: tuple[str, ...], committed: tuple[str, ...], applied: tuple[str, ...]
) -> tuple[str, ...]:
    """The ring plus ids applied in this batch that already fell off it (not yet committed)."""
    in_ring = set(ring)
    was_committed = set(committed)
    carried = tuple(i for i in applied if i not in in_ring and i not in was_committed)
    return (*dict.fromkeys(carried), *ring)


def most_recent(orders: Iterable[OrderRecord], count: int) -> list[OrderRecord]:
    """Return the ``count`` most recently paid orders (ties broken by order id)."""
    ranked = sorted(orders, key=lambda o: (o.paid_at, o.order_id), reverse=True)
    return ranked[: max(count, 0)]


def hydrate(
    state: CustomerState, restored: Iterable[OrderRecord], known_ids: frozenset[str]
) -> CustomerState:
    """Return the state with archived orders put back and archived ids made known."""
    hot = {o.order_id for o in state.orders}
    extra = tuple(o for o in restored if o.order_id not in hot)
    changes: dict[str, object] = {}
    if extra:
        changes["orders"] = tuple(sorted((*state.orders, *extra), key=_paid_order))
    if known_ids:
        changes["known_ids"] = state.known_ids | known_ids
    return state.model_copy(update=changes) if changes else state


def _paid_order(order: OrderRecord) -> tuple[object, str]:
    return (order.paid_at, order.order_id)
