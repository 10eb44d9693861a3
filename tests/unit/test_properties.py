"""Properties of the rules over random histories of one customer (hypothesis)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.decide import decide
from models.messages import SYSTEM_TYPES, InputMessage
from models.program import Program
from models.state import CustomerState
from models.tally import Counts
from tests.unit.factories import CODE_KEY, CUSTOMER, PROGRAM, T0, make_program
from tests.unit.reference_model import RefCustomer
from topics.codec import parse_message

PROCESSED = datetime(2199, 12, 31, tzinfo=UTC)
"""Processing time after every generated message: generated histories run years ahead, and
the one rule that reads processing time (occurred_at_in_future) must not cut them short."""
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Op:
    """One generated step: a message kind and its parameters (turned into a message later)."""

    kind: str
    order: int = 0
    cents: int = 0
    coffees: int = 0
    delta: int = 0
    full: bool = False
    months: int | None = None
    mugs: int = 0
    sku: str = "latte"
    shipping: int = 0


# Small totals too, so that items are often worth more than the total (an order discount).
cents = st.one_of(st.integers(0, 2_500), st.integers(min_value=0, max_value=120_000))
ops = st.one_of(
    st.builds(
        Op,
        kind=st.just("order"),
        cents=cents,
        coffees=st.integers(0, 7),
        mugs=st.sampled_from([0, 0, 1, 3]),
    ),
    st.builds(
        Op,
        kind=st.just("item_refund"),
        order=st.integers(0, 5),
        coffees=st.integers(1, 4),
        sku=st.sampled_from(["latte", "mug"]),
    ),
    st.builds(
        Op,
        kind=st.just("refund"),
        order=st.integers(0, 5),
        cents=st.integers(1, 80_000),
        full=st.booleans(),
    ),
    st.builds(Op, kind=st.just("cancel"), order=st.integers(0, 5)),
    st.builds(Op, kind=st.just("points"), delta=st.integers(-800, 1500).filter(bool)),
    st.builds(Op, kind=st.just("stamps"), delta=st.integers(-6, 9).filter(bool)),
    st.builds(Op, kind=st.just("redeem")),
    st.builds(Op, kind=st.just("cookie")),
)
histories = st.lists(ops, max_size=25)
refund_ops = st.one_of(
    st.builds(
        Op,
        kind=st.just("order"),
        cents=st.integers(0, 2_500),
        coffees=st.integers(0, 7),
        mugs=st.integers(0, 3),
        shipping=st.sampled_from([0, 0, 499]),
    ),
    st.builds(
        Op,
        kind=st.just("item_refund"),
        order=st.integers(0, 3),
        coffees=st.integers(1, 4),
        sku=st.sampled_from(["latte", "mug"]),
    ),
    st.builds(Op, kind=st.just("refund"), order=st.integers(0, 3), cents=st.integers(1, 2_000)),
    st.builds(Op, kind=st.just("refund"), order=st.integers(0, 3), full=st.just(True)),
    st.builds(Op, kind=st.just("cancel"), order=st.integers(0, 3)),
)
refund_histories = st.lists(refund_ops, max_size=20)
"""Orders and every kind of refund, dense: item refunds of discounted orders meet often."""


def to_messages(history: list[Op]) -> list[InputMessage]:
    """Turn ops into messages one hour apart, starting with the customer joining."""
    raw: list[dict[str, Any]] = [
        {"type": "customer.upserted", "data": {"email": "ana@example.com"}}
    ]
    orders = 0
    for n, op in enumerate(history):
        if op.kind == "order":
            cost = Decimal(op.cents) / 100
            shipping = min(Decimal(op.shipping) / 100, cost)
            # Items may be worth more than the total (an order discount) or less (the rest
            # is shipping or tax): item refunds then reverse each item's share.
            items: list[dict[str, Any]] = []
            if op.coffees:
                items.append(
                    {
                        "sku": "latte",
                        "quantity": op.coffees,
                        "unit_price": "1.00",
                        "categories": ["coffee"],
                    }
                )
            if op.mugs:
                items.append({"sku": "mug", "quantity": op.mugs, "unit_price": "5.00"})
            raw.append(
                {
                    "type": "order.paid",
                    "data": {
                        "order_id": f"o{orders}",
                        "total": str(cost),
                        "currency": "EUR",
                        "items": items,
                        **({"shipping": str(shipping)} if shipping else {}),
                    },
                }
            )
            orders += 1
        elif op.kind == "refund":
            data: dict[str, Any] = {"order_id": f"o{op.order}", "refund_id": f"r{n}"}
            if not op.full:
                data["amount"] = str(Decimal(op.cents) / 100)
            raw.append({"type": "order.refunded", "data": data})
        elif op.kind == "item_refund":
            items = [{"sku": op.sku, "quantity": op.coffees}]
            data = {"order_id": f"o{op.order}", "refund_id": f"r{n}", "items": items}
            raw.append({"type": "order.refunded", "data": data})
        elif op.kind == "cancel":
            raw.append({"type": "order.cancelled", "data": {"order_id": f"o{op.order}"}})
        elif op.kind == "points":
            raw.append({"type": "points.adjust", "data": {"delta": op.delta}})
        elif op.kind == "stamps":
            raw.append({"type": "stamps.adjust", "data": {"delta": op.delta}})
        else:
            reward = "cookie" if op.kind == "cookie" else "tote-bag"
            raw.append({"type": "reward.redeem", "data": {"reward_id": reward}})
    return [
        parse_message(
            {
                **body,
                "id": f"m{n}",
                "customer_id": CUSTOMER,
                "occurred_at": (T0 + timedelta(hours=n)).isoformat(),
            }
        )
        for n, body in enumerate(raw)
    ]


def replay(messages: list[InputMessage]) -> CustomerState:
    state: CustomerState | None = None
    for message in messages:
        state = decide(state, message, PROGRAM, PROCESSED, code_key=CODE_KEY).state
    assert state is not None
    return state


def check_invariants(state: CustomerState) -> None:
    codes = [grant.code for grant in state.rewards]
    assert len(codes) == len(set(codes))  # every grant its own code
    assert all(lot.amount > 0 for lot in state.points_lots)
    assert state.points_balance >= 0
    assert state.stamps_balance >= 0
    assert 0 <= state.stamps_balance < 5  # a full card spends its stamps at once
    assert state.points_balance == sum(lot.amount for lot in state.points_lots)
    assert state.points_pending == sum(p.amount for p in state.points_pending_lots)
    assert all(p.amount > 0 for p in state.points_pending_lots)
    confirms = [p.confirm_at for p in state.points_pending_lots]
    assert confirms == sorted(confirms)
    if state.reminder_at is not None:
        assert state.next_due_at is not None
        assert state.next_due_at <= state.reminder_at
    spend_order = [
        (lot.expires_at is None, lot.expires_at or lot.earned_at) for lot in state.points_lots
    ]
    assert spend_order == sorted(spend_order)
    assert state.lifetime_spend == sum((o.net_amount for o in state.orders), Decimal(0))
    assert state.order_count == sum(1 for o in state.orders if not o.fully_reversed)
    for tally in (state.qualifying, state.downgrade_qualifying, state.temporary_qualifying):
        if tally is None:
            continue
        summed = Counts()
        for bucket in tally.periods:
            summed = summed.plus(bucket)
        assert tally.window == summed
        assert [b.start for b in tally.periods] == sorted({b.start for b in tally.periods})
    # The tally of all activity holds everything, as the lifetime figures do.
    assert state.qualifying.total == Counts(
        points_earned=state.points_earned,
        amount_spent=state.lifetime_spend,
        orders=state.order_count,
    )
    for record in state.orders:
        assert 0 <= record.points_reversed <= record.points_earned
        assert 0 <= record.stamps_reversed <= record.stamps_earned
        assert record.refunded_amount <= record.total


@FAST
@given(histories)
def test_balances_never_negative_and_ledgers_add_up(history: list[Op]) -> None:
    state: CustomerState | None = None
    for message in to_messages(history):
        state = decide(state, message, PROGRAM, PROCESSED, code_key=CODE_KEY).state
        assert state is not None
        check_invariants(state)


@FAST
@given(histories)
def test_points_earned_is_what_orders_kept_plus_adjustments(history: list[Op]) -> None:
    messages = to_messages(history)
    state: CustomerState | None = None
    adjusted = 0
    for message in messages:
        decision = decide(state, message, PROGRAM, PROCESSED, code_key=CODE_KEY)
        if message.type == "points.adjust" and decision.rejection is None:
            adjusted += message.data.delta
        state = decision.state
    assert state is not None
    kept = sum(o.points_earned - o.points_reversed for o in state.orders)
    assert state.points_earned == kept + adjusted


@FAST
@given(histories, st.data())
def test_applying_any_message_twice_equals_applying_it_once(history: list[Op], data) -> None:
    messages = to_messages(history)
    once = replay(messages)
    doubled: list[InputMessage] = []
    for message in messages:
        doubled.append(message)
        if data.draw(st.booleans(), label=f"repeat {message.id}"):
            doubled.append(message)
    # a later redelivery too: pick any message and send it again at the end
    if messages:
        doubled.append(data.draw(st.sampled_from(messages), label="late repeat"))
    state: CustomerState | None = None
    for message in doubled:
        decision = decide(state, message, PROGRAM, PROCESSED, code_key=CODE_KEY)
        if state is not None and state.has_applied(message.id):
            assert decision.duplicate
            assert decision.outputs == ()
            assert decision.activity == ()
        state = decision.state
    assert state == once


@FAST
@given(histories, st.integers(0, 5))
def test_a_full_refund_leaves_no_points_from_that_order(history: list[Op], pick: int) -> None:
    messages = to_messages(history)
    before = replay(messages)
    paid = [m for m in messages if m.type == "order.paid"]
    if not paid:
        return
    target = paid[pick % len(paid)]
    record = before.order(target.data.order_id)
    assert record is not None
    refund = parse_message(
        {
            "id": "final-refund",
            "type": "order.refunded",
            "customer_id": CUSTOMER,
            "occurred_at": (T0 + timedelta(days=9)).isoformat(),
            "data": {"order_id": record.order_id, "refund_id": "final"},
        }
    )
    after = decide(before, refund, PROGRAM, PROCESSED, code_key=CODE_KEY).state
    assert after is not None
    final = after.order(record.order_id)
    assert final is not None
    assert final.points_reversed == final.points_earned
    assert final.stamps_reversed == final.stamps_earned
    # Points that never expire share one lot, so the order's own points are told by the
    # balance: everything not yet reversed came out (as far as the balance held it).
    unreversed = record.points_earned - record.points_reversed
    assert after.points_earned == before.points_earned - unreversed
    assert after.points_balance == before.points_balance - min(unreversed, before.points_balance)


@FAST
@given(st.one_of(histories, refund_histories))
def test_state_matches_the_reference_model(history: list[Op]) -> None:
    messages = to_messages(history)
    model = RefCustomer()
    state: CustomerState | None = None
    for message in messages:
        state = decide(state, message, PROGRAM, PROCESSED, code_key=CODE_KEY).state
        if message.type == "order.paid":
            units = {item.sku: item.quantity for item in message.data.items}
            model.order_paid(
                message.id,
                message.data.order_id,
                message.data.total,
                units.get("latte", 0),
                units.get("mug", 0),
                message.data.shipping or Decimal(0),
            )
        elif message.type == "order.refunded":
            data = message.data
            items = None if data.items is None else {i.sku: i.quantity for i in data.items}
            model.refund(message.id, data.order_id, data.amount, cancel=False, items=items)
        elif message.type == "order.cancelled":
            model.refund(message.id, message.data.order_id, None, cancel=True)
        elif message.type == "points.adjust":
            model.adjust_points(message.id, message.data.delta)
        elif message.type == "stamps.adjust":
            model.adjust_stamps(message.id, message.data.delta)
        elif message.type == "reward.redeem":
            model.redeem(message.id, message.data.reward_id)
        assert state is not None
        assert (state.points_balance, state.points_earned, state.stamps_balance) == (
            model.points,
            model.earned,
            model.stamps,
        )
        assert state.stamp_cards_completed == model.cards
        assert (state.tier, state.lifetime_spend) == (model.tier, model.spend)


# --- richer histories: tier commands, expiries and time passing -------------------------

EARNING_PROGRAM = make_program(
    earn={
        "points_per_currency_unit": 1,
        "points_expire_after_months": 3,
        "points_pending_days": 14,
        "excluded_skus": ["mug"],
        "multiplier_tier": "reached",
    },
    reminders={"points_expiring_days": 20, "tier_expiring_days": 10},
    membership_period={"months": 2},
    qualification_period={"rolling_months": 6},
)
"""Issue 12's settings together: pending points, filters, reached multiplier, reminders."""
PROGRAMS = [
    PROGRAM,
    make_program(membership_period={"months": 12}),
    make_program(qualification_period={"rolling_months": 6}),
    EARNING_PROGRAM,
]
CALENDAR_PROGRAM = make_program(
    qualification_period="calendar_year", membership_period={"months": 3}
)
tier_names = st.sampled_from(["Bronze", "Silver", "Gold"])
expiries = st.one_of(
    st.none(), st.builds(lambda d: {"kind": "duration", "days": d}, st.integers(1, 400))
)
rich_bodies = st.one_of(
    st.builds(
        lambda t, n: {"type": "tier.change", "data": {"tier": t, "notify": n}},
        tier_names,
        st.booleans(),
    ),
    st.builds(
        lambda a, s, t, e: {
            "type": "tier.manage",
            "data": {
                "action": a,
                "strategy": s,
                **({"tier": t} if s == "specific" else {}),
                **({"expiry": e} if e else {}),
            },
        },
        st.sampled_from(["upgrade", "downgrade", "renew"]),
        st.sampled_from(["specific", "rules"]),
        tier_names,
        expiries,
    ),
    st.builds(
        lambda d, m: {"type": "points.adjust", "data": {"delta": d, "expires_in_months": m}},
        st.integers(1, 900),
        st.one_of(st.none(), st.integers(1, 14)),
    ),
    st.just({"type": "points.expire", "data": {}}),
    st.just({"type": "tier.expire", "data": {}}),
    st.just({"type": "points.confirm", "data": {}}),
    st.just({"type": "reminder.due", "data": {}}),
    st.just({"type": "reward.redeem", "data": {"reward_id": "cookie"}}),
)


@st.composite
def rich_histories(draw: st.DrawFn) -> list[InputMessage]:
    base = to_messages(draw(histories))
    extra = draw(st.lists(rich_bodies, max_size=15))
    mixed = list(base[1:]) + [None] * len(extra)
    order = draw(st.permutations(range(len(mixed))))
    bodies = iter(extra)
    moment = T0
    messages = [base[0]]
    for n, index in enumerate(order):
        moment += timedelta(hours=draw(st.integers(0, 2000), label="hours later"))
        original = mixed[index]
        body = original.model_dump(mode="json") if original is not None else next(bodies)
        if body["type"] in SYSTEM_TYPES:
            body["data"] = {"due_at": moment.isoformat()}
        body.update(id=f"x{n}", customer_id=CUSTOMER, occurred_at=moment.isoformat())
        messages.append(parse_message(body))
    return messages


@FAST
@given(rich_histories(), st.sampled_from(PROGRAMS))
def test_invariants_hold_with_tier_commands_and_time_events(messages, program) -> None:
    state: CustomerState | None = None
    for message in messages:
        decision = decide(state, message, program, PROCESSED, code_key=CODE_KEY)
        assert decision.state is not None
        check_invariants(decision.state)
        ids = [o.id for o in decision.outputs] + [a.activity_id for a in decision.activity]
        assert len(ids) == len(set(ids))
        changes = [o.data for o in decision.outputs if o.type == "tier.changed"]
        for change in changes:
            assert change.from_tier != change.to_tier or change.direction == "renew"
        if changes:
            assert changes[-1].to_tier == decision.state.tier
        else:
            assert state is None or decision.state.tier == state.tier
        state = decision.state


@FAST
@given(rich_histories(), st.sampled_from(PROGRAMS), st.data())
def test_redelivery_is_a_no_op_with_tier_commands_and_time_events(messages, program, data):
    once: CustomerState | None = None
    twice: CustomerState | None = None
    for message in messages:
        once = decide(once, message, program, PROCESSED, code_key=CODE_KEY).state
        twice = decide(twice, message, program, PROCESSED, code_key=CODE_KEY).state
        if data.draw(st.booleans(), label=f"repeat {message.id}"):
            repeat = decide(twice, message, program, PROCESSED, code_key=CODE_KEY)
            assert repeat.duplicate
            twice = repeat.state
    assert once == twice


def _with_scheduled_time_events(
    messages: list[InputMessage], program: Program
) -> tuple[CustomerState, list[Any]]:
    """Replay, sending a tier.expire at every next_due_at before the next message is due."""
    state: CustomerState | None = None
    changes: list[Any] = []
    for message in messages:
        last_due = None
        while state is not None and state.next_due_at is not None:
            due = state.next_due_at
            if due > message.occurred_at:
                break
            assert last_due is None or due > last_due, "a time event must move next_due_at on"
            last_due = due
            event = parse_message(
                {
                    "id": f"tick-{due.isoformat()}",
                    "type": "tier.expire",
                    "customer_id": CUSTOMER,
                    "occurred_at": due.isoformat(),
                    "data": {"due_at": due.isoformat()},
                }
            )
            decision = decide(state, event, program, PROCESSED, code_key=CODE_KEY)
            changes += [o for o in decision.outputs if o.type == "tier.changed"]
            state = decision.state
        decision = decide(state, message, program, PROCESSED, code_key=CODE_KEY)
        changes += [o for o in decision.outputs if o.type == "tier.changed"]
        state = decision.state
    assert state is not None
    return state, changes


@FAST
@given(rich_histories(), st.sampled_from([*PROGRAMS, CALENDAR_PROGRAM]))
def test_scheduled_time_events_change_tiers_as_later_messages_would(messages, program) -> None:
    scheduled, scheduled_changes = _with_scheduled_time_events(messages, program)
    state: CustomerState | None = None
    changes: list[Any] = []
    for message in messages:
        decision = decide(state, message, program, PROCESSED, code_key=CODE_KEY)
        changes += [o for o in decision.outputs if o.type == "tier.changed"]
        state = decision.state
    assert state is not None
    ignored = {"applied_ids", "version"}
    assert scheduled.model_dump(exclude=ignored) == state.model_dump(exclude=ignored)
    assert [(c.id, c.data) for c in scheduled_changes] == [(c.id, c.data) for c in changes]
