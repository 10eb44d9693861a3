"""What the hot document keeps and what moves to the archives (pure planning)."""

from __future__ import annotations

from store.documents import pair_id
from store.hot import plan_write
from store.mongo_lookup import Synced
from store.repository import CustomerWrite, StoredCustomer
from tests.store_contract import customer, order


def _loaded(state, *, hot=None, version=4):
    orders = frozenset(o.order_id for o in state.orders) if hot is None else frozenset(hot)
    return StoredCustomer(
        state=state,
        version=version,
        offsets={},
        hot_ring=state.applied_ids,
        hot_order_ids=orders,
        restored_order_ids=frozenset(o.order_id for o in state.orders) - orders,
    )


def test_a_new_customer_keeps_every_order_until_they_are_committed() -> None:
    state = customer("c", orders=tuple(order(f"o{n}", days=n) for n in range(5)))

    plan = plan_write(CustomerWrite(state=state, loaded=None), hot_orders=2)

    assert [o.order_id for o in plan.state.orders] == ["o0", "o1", "o2", "o3", "o4"]
    assert plan.archive_orders == ()


def test_committed_unchanged_orders_beyond_the_limit_are_archived_with_their_version() -> None:
    state = customer("c", orders=tuple(order(f"o{n}", days=n) for n in range(4)))

    plan = plan_write(CustomerWrite(state=state, loaded=_loaded(state)), hot_orders=2)

    assert [o.order_id for o in plan.state.orders] == ["o2", "o3"]
    assert [o.order_id for o in plan.archive_orders] == ["o0", "o1"]
    assert plan.archive_version == 4


def test_a_restored_order_goes_back_without_being_archived_again_unless_changed() -> None:
    orders = tuple(order(f"o{n}", days=n) for n in range(4))
    state = customer("c", orders=orders)
    loaded = _loaded(state, hot={"o2", "o3"})
    refunded = orders[1].model_copy(update={"refund_ids": ("r",)})
    new = state.model_copy(update={"orders": (orders[0], refunded, *orders[2:])})

    plan = plan_write(CustomerWrite(state=new, loaded=loaded), hot_orders=2)

    assert [o.order_id for o in plan.state.orders] == ["o1", "o2", "o3"]
    assert plan.archive_orders == ()


def test_only_ids_the_document_held_are_archived_and_newer_ones_are_carried() -> None:
    loaded = _loaded(customer("c", applied_ids=("a", "b")))
    new = loaded.state.model_copy(update={"applied_ids": ("d", "e")})

    plan = plan_write(
        CustomerWrite(state=new, loaded=loaded, applied_ids=("c", "d", "e")), hot_orders=2
    )

    assert plan.archive_ids == ("a", "b")
    assert plan.state.applied_ids == ("c", "d", "e")


def test_synced_versions_are_forgotten_oldest_first() -> None:
    synced = Synced(limit=2)
    synced.add("a", 1)
    synced.add("b", 1)
    synced.add("a", 2)
    synced.add("c", 1)

    assert synced.has("a", 2)
    assert not synced.has("a", 1)
    assert not synced.has("b", 1)
    assert synced.has("c", 1)


def test_pair_ids_cannot_be_forged_by_moving_a_separator() -> None:
    assert pair_id("a:b", "c") != pair_id("a", "b:c")
    assert len(pair_id("x" * 500, "y")) == 40
