"""The incremental qualification counters agree with a full recomputation over the history.

The rules never read the order history for a metric (``models/tally.py``); this oracle does, the
slow way: from every order record the unit tests keep and every accepted points adjustment, it
sums what still counts at the message's time, each piece leaving the period at its own moment.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from models.decide import decide
from models.program import Program
from models.rules.qualification import counted
from models.state import CustomerState
from tests.unit.factories import CODE_KEY, NOW, make_program
from tests.unit.test_properties import FAST, PROGRAMS, rich_histories

TALLY_PROGRAMS = [
    *PROGRAMS,
    make_program(qualification_period="calendar_year"),
    make_program(qualification_period={"rolling_months": 1}),
]


def _leaves(program: Program, moment: datetime) -> datetime | None:
    """When activity at ``moment`` stops counting, written out independently of the rules."""
    period = program.qualification_period
    if period.kind == "calendar_year":
        return datetime(moment.year + 1, 1, 1, tzinfo=UTC)
    if period.kind == "rolling_months" and period.months is not None:
        index = moment.month - 1 + period.months
        year, month = moment.year + index // 12, index % 12 + 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        return datetime(year, month, day, tzinfo=UTC) + timedelta(days=1)
    return None


def _recomputed(
    state: CustomerState, adjustments: list[tuple[datetime, int]], program: Program, at: datetime
) -> tuple[int, Decimal, int]:
    def counts(moment: datetime) -> bool:
        leaves = _leaves(program, moment)
        return leaves is None or at < leaves

    orders = [o for o in state.orders if counts(o.paid_at)]
    points = sum(o.points_earned - o.points_reversed for o in orders)
    points += sum(delta for moment, delta in adjustments if counts(moment))
    spend = sum((o.net_amount for o in orders), Decimal(0))
    return points, spend, sum(1 for o in orders if not o.fully_reversed)


@FAST
@given(rich_histories(), st.sampled_from(TALLY_PROGRAMS))
def test_counters_equal_a_recomputation_over_the_whole_history(messages, program) -> None:
    state: CustomerState | None = None
    adjustments: list[tuple[datetime, int]] = []
    for message in messages:
        decision = decide(state, message, program, NOW, code_key=CODE_KEY)
        if message.type == "points.adjust" and decision.rejection is None and decision.changed:
            adjustments.append((message.occurred_at, message.data.delta))
        state = decision.state
        assert state is not None
        at = message.occurred_at
        # Now, and just before and at every later moment a piece of activity leaves the period.
        moments = [o.paid_at for o in state.orders] + [moment for moment, _ in adjustments]
        leaving = {_leaves(program, moment) for moment in moments} - {None}
        probes = {at} | {
            probe
            for leaves in leaving
            if leaves is not None
            for probe in (leaves - timedelta(microseconds=1), leaves)
            if probe >= at
        }
        for probe in sorted(probes):
            window = counted(state.qualifying, probe, program)
            expected = _recomputed(state, adjustments, program, probe)
            assert (window.points_earned, window.amount_spent, window.orders) == expected, probe
        assert (state.points_earned, state.lifetime_spend, state.order_count) == (
            state.qualifying.total.points_earned,
            state.qualifying.total.amount_spent,
            state.qualifying.total.orders,
        )
