"""Extreme but valid messages: the rules decide them (refusal or change) and never raise."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.decide import decide
from models.program import ProgramError
from models.values import LATEST_EVENT
from tests.unit.factories import (
    BASE_PROGRAM,
    CODE_KEY,
    apply,
    coffee,
    joined,
    make_program,
    msg,
    order,
    run,
)

LAST_MOMENT = LATEST_EVENT  # processing time after every valid occurred_at
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LAST = datetime(2199, 12, 31, 23, 59, 59, tzinfo=UTC)
FIRST = datetime(2000, 1, 1, tzinfo=UTC)
TOP_MONEY = "999999999999.9999"


def _manage(expiry: dict[str, Any], fields: dict[str, Any], at: datetime = LAST) -> Any:
    body = {
        "action": "upgrade",
        "strategy": "specific",
        "tier": "Gold",
        "expiry": expiry,
        "extended_fields": fields,
    }
    return msg("tier.manage", body, at=at)


@pytest.mark.parametrize(
    ("expiry", "fields"),
    [
        ({"kind": "duration_from_field", "field": "Days", "unit": "days"}, {"Days": "1e999999999"}),
        ({"kind": "duration_from_field", "field": "Days", "unit": "days"}, {"Days": 10**17}),
        ({"kind": "duration_from_field", "field": "M", "unit": "months"}, {"M": "99999999"}),
        ({"kind": "after_field_date", "field": "D", "months": 1}, {"D": "9999-12-31"}),
        ({"kind": "after_field_date", "field": "D", "days": 1}, {"D": "9999-12-31T23:00:00Z"}),
        ({"kind": "after_field_date", "field": "D"}, {"D": "9999-12-31T23:59:59-23:59"}),
    ],
    ids=[
        "days 1e999999999",
        "days 10^17",
        "months 99999999",
        "date 9999-12-31 plus a month",
        "timestamp in 9999 plus a day",
        "timestamp past the end of datetime",
    ],
)
def test_expiry_fields_out_of_range_are_refused_not_raised(
    expiry: dict[str, Any], fields: dict[str, Any]
) -> None:
    decision = apply(joined(), _manage(expiry, fields, at=datetime(2025, 3, 1, tzinfo=UTC)))
    assert decision.rejection is not None
    assert decision.rejection.code == "expiry_field_malformed"


def test_expiry_from_a_field_with_an_offset_is_stored_in_utc() -> None:
    expiry = {"kind": "after_field_date", "field": "CheckOut", "days": 1}
    at = datetime(2025, 3, 1, tzinfo=UTC)
    decision = apply(joined(), _manage(expiry, {"CheckOut": "2025-06-15T02:00:00+02:00"}, at=at))
    assert decision.state is not None
    assert decision.state.tier_expires_at == datetime(2025, 6, 16, tzinfo=UTC)
    assert decision.state.tier_expires_at.utcoffset() is not None
    assert decision.state.tier_expires_at.tzinfo is UTC


def test_order_in_another_currency_is_refused_and_earns_nothing() -> None:
    state = joined()
    decision = apply(
        state,
        msg("order.paid", {"order_id": "o1", "total": "100.00", "currency": "USD"}),
    )
    assert decision.rejection is not None
    assert decision.rejection.code == "currency_mismatch"
    assert "USD" in decision.rejection.reason
    assert "EUR" in decision.rejection.reason
    assert decision.state is not None
    assert decision.state.points_balance == 0
    assert decision.state.orders == ()
    assert decision.state.lifetime_spend == 0


FREE_STAMPS = make_program(stamps={**BASE_PROGRAM["stamps"], "min_order_value": "0"})


def _refund_items(refund_id: str, quantity: int) -> Any:
    body = {
        "order_id": "o1",
        "refund_id": refund_id,
        "items": [{"sku": "latte", "quantity": quantity}],
    }
    return msg("order.refunded", body)


def test_partial_item_refund_of_a_free_order_reverses_only_those_items() -> None:
    state = joined(order("o1", "0.00", [coffee(3, "0.00")]), program=FREE_STAMPS)
    assert state.stamps_balance == 3
    state, decisions = run(_refund_items("r1", 1), program=FREE_STAMPS, state=state)
    assert state is not None
    assert decisions[-1].rejection is None
    assert state.stamps_balance == 2
    assert state.order_count == 1
    state, decisions = run(_refund_items("r2", 2), program=FREE_STAMPS, state=state)
    assert state is not None
    assert decisions[-1].rejection is None
    assert state.stamps_balance == 0
    assert state.order_count == 0


def test_points_at_the_top_of_every_bound_are_exact() -> None:
    program = make_program(
        earn={"points_per_currency_unit": "999999999999", "rounding": "half_up"},
        tiers=[{"name": "Bronze", "rank": 0, "threshold": 0, "points_multiplier": "999999999999"}],
    )
    state = joined(program=program)
    decision = apply(state, order("o1", TOP_MONEY), program)
    assert decision.state is not None
    expected = 999999999999 * 999999999999 * 9999999999999999 // 10**4
    assert decision.state.points_balance in {expected, expected + 1}


@pytest.mark.parametrize(
    "earn",
    [
        {"points_per_currency_unit": "1e20"},
        {"points_per_currency_unit": 1, "points_expire_after_months": 10**6},
    ],
)
def test_program_refuses_rates_and_months_that_would_overflow(earn: dict[str, Any]) -> None:
    with pytest.raises(ProgramError):
        make_program(earn=earn)
    with pytest.raises(ProgramError):
        make_program(membership_period={"months": 10**9})


CALENDAR = make_program(
    qualification_period="calendar_year",
    membership_period={"months": 1200},
    earn={"points_per_currency_unit": 1, "points_expire_after_months": 1200},
)
moments = st.sampled_from([FIRST, LAST, datetime(2199, 12, 31, tzinfo=UTC)])
extreme_messages = st.one_of(
    st.builds(
        lambda at, n: order(
            f"o{n}",
            TOP_MONEY,
            [{"sku": "bolt", "quantity": 10**6, "unit_price": "0.0001"}, coffee(3)],
            at=at,
        ),
        moments,
        st.integers(0, 2),
    ),
    st.builds(
        lambda at, d: msg("points.adjust", {"delta": d, "expires_in_months": 1200}, at=at),
        moments,
        st.sampled_from([10**9, -(10**9), 1]),
    ),
    st.builds(
        lambda at, d: msg("stamps.adjust", {"delta": d}, at=at),
        moments,
        st.sampled_from([1000, -1000, 1]),
    ),
    st.builds(
        lambda at, n: msg(
            "order.refunded",
            {"order_id": f"o{n}", "refund_id": f"r{at}", "amount": "0.0001"},
            at=at,
        ),
        moments,
        st.integers(0, 2),
    ),
    st.builds(
        lambda at, e: _manage(e, {}, at=at),
        moments,
        st.sampled_from(
            [
                {"kind": "duration", "months": 1200, "days": 36600},
                {"kind": "fixed_date", "date": "2199-12-31"},
            ]
        ),
    ),
    st.builds(lambda at: msg("tier.expire", {"due_at": at.isoformat()}, at=at), moments),
    st.builds(lambda at: msg("points.expire", {"due_at": at.isoformat()}, at=at), moments),
)


@FAST
@given(messages=st.lists(extreme_messages, max_size=8))
def test_decide_never_raises_on_extreme_valid_messages(messages: list[Any]) -> None:
    state = joined(program=CALENDAR)
    for message in messages:
        # Processed after the latest allowed date, so no extreme date is refused as future.
        decision = decide(state, message, CALENDAR, LAST_MOMENT, code_key=CODE_KEY)
        assert decision.rejection is None or decision.rejection.code != "occurred_at_in_future"
        assert decision.state is not None
        state = decision.state
        assert state.points_balance >= 0
        assert state.model_validate(state.model_dump(mode="json")) == state
