"""The qualification metrics, kept as counters: record activity, settle buckets, read metrics.

Each piece of activity (an order's points, spend and count; a points adjustment; a refund's
reversal, dated to the order it reverses) goes into the bucket of the period it belongs to:

* ``lifetime``: no buckets, ``total`` is the metric;
* ``calendar_year``: one bucket per year, leaving the period on the next January 1st (UTC);
* ``rolling_months: N``: one bucket per UTC day, leaving the period at the end of the same
  date N months later (a day that does not exist there clamps to the month's last day), so an
  order on 1 March counts until the end of 1 March a year later under a 12-month period.

A bucket that has left the period is settled (subtracted from the window, dropped) when time
passes it; the metric at a moment subtracts any bucket not settled yet, so it is exact at every
due time ``tier_time`` evaluates. Activity dated to a bucket that has already left (a refund of
an order paid two periods ago) changes only the totals.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from models.program import Metric, Program, QualificationPeriodModel
from models.rules.base import Context, Step
from models.rules.periods import add_months, start_of_day
from models.state import CustomerState
from models.tally import Counts, PeriodCounts, Qualifying

_DAY = timedelta(days=1)
TALLIES = ("qualifying", "downgrade_qualifying", "temporary_qualifying")
"""The state's tallies: every piece of activity goes into each one it falls in."""


def bucket_start(period: QualificationPeriodModel, moment: datetime) -> date | None:
    """The first day of the bucket activity at ``moment`` belongs to (``None``: lifetime)."""
    if period.kind == "calendar_year":
        return date(moment.year, 1, 1)
    if period.kind == "rolling_months":
        return moment.date()
    return None


def leaves_at(period: QualificationPeriodModel, start: date) -> datetime | None:
    """When a bucket starting on ``start`` stops counting (``None``: never)."""
    return _leaves_at(period.kind, period.months, start)


@lru_cache(maxsize=4096)
def _leaves_at(kind: str, months: int | None, start: date) -> datetime | None:
    # Asked for the same few buckets on every event (the oldest, today's): worth remembering.
    if kind == "calendar_year":
        return start_of_day(date(start.year + 1, 1, 1))
    if kind == "rolling_months" and months is not None:
        return add_months(start_of_day(start), months) + _DAY
    return None


def record(tally: Qualifying, delta: Counts, moment: datetime, program: Program) -> Qualifying:
    """Add ``delta``, dated ``moment``, to the tally (nothing if it predates ``since``)."""
    if tally.since is not None and moment < tally.since:
        return tally
    total = tally.total.plus(delta)
    period = program.qualification_period
    start = bucket_start(period, moment)
    if start is None:
        return tally.model_copy(update={"total": total})
    periods = tally.periods
    if periods and periods[-1].start == start:  # the usual case: more activity today
        periods = (*periods[:-1], periods[-1].plus(delta))
    elif not periods or periods[-1].start < start:
        periods = (*periods, _bucket(start, delta))
    else:  # a reversal dated to an earlier bucket
        buckets = list(periods)
        index = bisect_left(buckets, start, key=lambda bucket: bucket.start)
        if index < len(buckets) and buckets[index].start == start:
            buckets[index] = buckets[index].plus(delta)
        else:
            buckets.insert(index, _bucket(start, delta))
        periods = tuple(buckets)
    return tally.model_copy(
        update={"total": total, "window": tally.window.plus(delta), "periods": periods}
    )


def _bucket(start: date, delta: Counts) -> PeriodCounts:
    return PeriodCounts.model_construct(
        start=start,
        points_earned=delta.points_earned,
        amount_spent=delta.amount_spent,
        orders=delta.orders,
    )


def settle(tally: Qualifying, at: datetime, program: Program) -> Qualifying:
    """Drop the buckets that have left the period by ``at`` (all of them under lifetime)."""
    period = program.qualification_period
    gone = 0
    window = tally.window
    for bucket in tally.periods:
        leaves = leaves_at(period, bucket.start)
        if leaves is not None and leaves > at:
            break
        window = window.minus(bucket)
        gone += 1
    if not gone:
        return tally
    if gone == len(tally.periods):
        window = Counts()  # exact zero, whatever rounding the Decimal sums carried
    return tally.model_copy(update={"window": window, "periods": tally.periods[gone:]})


def counted(tally: Qualifying, at: datetime, program: Program) -> Counts:
    """What the tally counts toward tiers at ``at``."""
    period = program.qualification_period
    if period.kind == "lifetime":
        return tally.total
    window = tally.window
    for bucket in tally.periods:
        leaves = leaves_at(period, bucket.start)
        if leaves is not None and leaves > at:
            break
        window = window.minus(bucket)
    return window


def metrics(
    state: CustomerState, program: Program, at: datetime, *, everything: bool = False
) -> dict[Metric, Decimal | int]:
    """The three qualification metrics at ``at`` over the activity that counts (or all)."""
    counts = counted(state.qualifying if everything else state.counting, at, program)
    return {
        "points_earned": counts.points_earned,
        "amount_spent": counts.amount_spent,
        "orders": counts.orders,
    }


def next_drop(state: CustomerState, program: Program, after: datetime) -> datetime | None:
    """When the current tier's metric would fall below its threshold with no new activity.

    Walks the buckets oldest first, taking each one out as it leaves the period; ``None`` when
    the metric never falls below it (lifetime period, or the tier is not one the rules give).
    """
    tier = program.find_tier(state.tier) if state.tier is not None else None
    period = program.qualification_period
    if tier is None or period.kind == "lifetime":
        return None
    metric = tier.metric
    tally = state.counting
    left = Decimal(getattr(counted(tally, after, program), metric))
    for bucket in tally.periods:
        leaves = leaves_at(period, bucket.start)
        if leaves is None or leaves <= after:
            continue
        left -= getattr(bucket, metric)
        if left < tier.threshold:
            return leaves
    return None


def lowered(
    before: CustomerState, after: CustomerState, metric: Metric, at: datetime, program: Program
) -> bool:
    """Whether ``after`` counts less of ``metric`` at ``at`` than ``before``, or counts anew."""
    if before.counting.since != after.counting.since:
        return True
    was = getattr(counted(before.counting, at, program), metric)
    now = getattr(counted(after.counting, at, program), metric)
    return bool(now < was)


def count(
    step: Step,
    ctx: Context,
    at: datetime,
    *,
    points: int = 0,
    spend: Decimal = Decimal(0),
    orders: int = 0,
) -> Step:
    """Count activity dated ``at``: the lifetime figures and every tally it falls in."""
    delta = Counts.model_construct(points_earned=points, amount_spent=spend, orders=orders)
    state = step.state
    changes: dict[str, object] = {
        "points_earned": state.points_earned + points,
        "lifetime_spend": state.lifetime_spend + spend,
        "order_count": state.order_count + orders,
    }
    for name in TALLIES:
        tally = getattr(state, name)
        if tally is not None:
            changes[name] = _record_live(tally, delta, at, ctx)
    return step.update(**changes)


def _record_live(tally: Qualifying, delta: Counts, at: datetime, ctx: Context) -> Qualifying:
    # Activity dated to a bucket that has already left the period (a refund of an order paid
    # long ago) no longer counts: it changes the total only, never a settled bucket.
    period = ctx.program.qualification_period
    start = bucket_start(period, at)
    leaves = leaves_at(period, start) if start is not None else None
    if leaves is not None and leaves <= ctx.at:
        if tally.since is not None and at < tally.since:
            return tally
        return tally.model_copy(update={"total": tally.total.plus(delta)})
    return record(tally, delta, at, ctx.program)


def settle_step(step: Step, ctx: Context, at: datetime) -> Step:
    """Settle the buckets of every tally that have left the period by ``at``."""
    state = step.state
    changes: dict[str, object] = {}
    for name in TALLIES:
        tally = getattr(state, name)
        if tally is not None and (settled := settle(tally, at, ctx.program)) is not tally:
            changes[name] = settled
    downgrade = state.downgrade_qualifying
    if downgrade is not None and _passed(downgrade, at, ctx.program):
        changes["downgrade_qualifying"] = None
    return step.update(**changes) if changes else step


def _passed(restart: Qualifying, at: datetime, program: Program) -> bool:
    """Whether everything from before ``restart.since`` has left the period by ``at``.

    Then the restart counts exactly what the tally of all activity counts, and is dropped. Under
    a lifetime period it never passes: activity before it would count again.
    """
    if restart.since is None:
        return True
    period = program.qualification_period
    start = bucket_start(period, restart.since)
    leaves = leaves_at(period, start) if start is not None else None
    return leaves is not None and leaves <= at
