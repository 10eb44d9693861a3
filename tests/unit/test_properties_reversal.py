"""Property: once every order is returned, nothing an order triggered is left standing."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from models.decide import decide
from models.state import CustomerState
from tests.unit.factories import CODE_KEY, CUSTOMER, make_program
from tests.unit.test_properties import FAST, PROCESSED, Op, to_messages
from topics.codec import parse_message

# Orders big enough to reach Silver (500) and Gold (1500), refunds of every kind, adjustments.
big_orders = st.builds(
    Op,
    kind=st.just("order"),
    cents=st.integers(10_000, 160_000),
    coffees=st.integers(0, 3),
    mugs=st.integers(0, 2),
)
histories = st.lists(
    st.one_of(
        big_orders,
        big_orders,
        st.builds(
            Op, kind=st.just("refund"), order=st.integers(0, 4), cents=st.integers(1, 90_000)
        ),
        st.builds(
            Op,
            kind=st.just("item_refund"),
            order=st.integers(0, 4),
            coffees=st.integers(1, 3),
            sku=st.sampled_from(["latte", "mug"]),
        ),
        st.builds(Op, kind=st.just("cancel"), order=st.integers(0, 4)),
    ),
    max_size=12,
)

PROGRAMS = [
    make_program(membership_period={"months": 12}),
    make_program(membership_period={"months": 12}, qualification_period={"rolling_months": 6}),
    make_program(membership_period={"months": 3}, entry_rewards_per_tier="every_entry"),
]


@FAST
@given(histories, st.sampled_from(PROGRAMS), st.randoms(use_true_random=False))
def test_returning_every_order_in_any_order_leaves_the_base_tier_and_no_entry_reward(
    history, program, random
) -> None:
    messages = to_messages(history)
    state: CustomerState | None = None
    for message in messages:
        state = decide(state, message, program, PROCESSED, code_key=CODE_KEY).state
    assert state is not None
    order_ids = [o.order_id for o in state.orders]
    random.shuffle(order_ids)
    last = messages[-1].occurred_at
    for n, order_id in enumerate(order_ids):
        cancel = parse_message(
            {
                "id": f"cancel-all-{n}",
                "type": "order.cancelled",
                "customer_id": CUSTOMER,
                "occurred_at": (last + timedelta(minutes=n + 1)).isoformat(),
                "data": {"order_id": order_id},
            }
        )
        state = decide(state, cancel, program, PROCESSED, code_key=CODE_KEY).state
        assert state is not None
    assert state.tier == "Bronze"
    assert state.points_earned == 0
    standing = [g for g in state.rewards if g.origin == "entry" and g.status == "issued"]
    assert standing == []
    assert state.entry_grants_unbacked == ()
