"""Calendar arithmetic the rules share: month steps and qualification windows (pure, UTC)."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta


def add_months(moment: datetime, months: int) -> datetime:
    """Step ``months`` calendar months, clamping the day (Jan 31 + 1 month = Feb 28/29)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def add_duration(moment: datetime, *, days: int = 0, months: int = 0) -> datetime:
    """Step months first, then days, so '1 month 3 days' from Jan 31 is Mar 3 (or Mar 2)."""
    return add_months(moment, months) + timedelta(days=days)


def start_of_day(day: date) -> datetime:
    """Midnight UTC at the start of ``day``."""
    return datetime.combine(day, time(0, 0), tzinfo=UTC)


def start_of_year(moment: datetime) -> datetime:
    """Midnight UTC on January 1st of the year ``moment`` falls in."""
    return datetime(moment.year, 1, 1, tzinfo=UTC)
