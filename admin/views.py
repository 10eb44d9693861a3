"""Customer views for staff: list rows and the CSV export (formula-neutralised text cells)."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterable, Iterable
from typing import IO

from models.state import CustomerState
from models.values import format_decimal, format_timestamp

EXPORT_COLUMNS = (
    "customer_id",
    "email",
    "first_name",
    "last_name",
    "status",
    "points_balance",
    "stamps_balance",
    "tier",
    "tier_expires_at",
    "lifetime_spend",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet treats a cell starting with one of these as a formula (or may)."""


def neutralise(text: str) -> str:
    """Return a text cell that no spreadsheet evaluates: a formula start gets a ``'`` prefix."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def export_row(state: CustomerState) -> list[str]:
    """Return one customer as the export's cells, text cells neutralised."""
    text = (
        state.customer_id,
        state.email,
        state.first_name or "",
        state.last_name or "",
        state.status,
    )
    customer_id, email, first_name, last_name, status = (neutralise(cell) for cell in text)
    expires = format_timestamp(state.tier_expires_at) if state.tier_expires_at else ""
    return [
        customer_id,
        email,
        first_name,
        last_name,
        status,
        str(state.points_balance),
        str(state.stamps_balance),
        neutralise(state.tier or ""),
        expires,
        format_decimal(state.lifetime_spend),
    ]


async def write_export(out: IO[str], customers: AsyncIterable[CustomerState]) -> int:
    """Write the header and every customer streamed from ``customers``; return the count."""
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    async for state in customers:
        writer.writerow(export_row(state))
        count += 1
    return count


def list_rows(states: Iterable[CustomerState]) -> list[tuple[str, ...]]:
    """Return the columns ``customer list`` shows for each customer."""
    return [
        (
            state.customer_id,
            state.email or "-",
            " ".join(part for part in (state.first_name, state.last_name) if part) or "-",
            state.status,
            state.tier or "-",
            str(state.points_balance),
            str(state.stamps_balance),
            state.joined_at.date().isoformat(),
        )
        for state in states
    ]
