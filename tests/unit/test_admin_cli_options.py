"""Pure option parsing of the admin CLI: expiry options, extended fields, list cursors."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import typer

from cli.customer_views import decode_cursor, encode_cursor
from cli.tier import Unit, _expiry, _fields
from store.repository import ListCursor


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            (date(2026, 12, 31), None, None, None, None),
            {"kind": "fixed_date", "date": "2026-12-31"},
        ),
        ((None, None, 3, None, None), {"kind": "duration", "months": 3}),
        ((None, 10, 1, None, None), {"kind": "duration", "days": 10, "months": 1}),
        (
            (None, None, 12, "member_since", None),
            {"kind": "after_field_date", "field": "member_since", "months": 12},
        ),
        (
            (None, None, None, "trial", Unit.days),
            {"kind": "duration_from_field", "field": "trial", "unit": "days"},
        ),
        ((None, None, None, None, None), None),
    ],
)
def test_expiry_options_map_to_the_contracts_expiry(args, expected):
    assert _expiry(*args) == expected


@pytest.mark.parametrize(
    "args",
    [
        (date(2026, 12, 31), None, 3, None, None),
        (None, None, 3, "trial", Unit.days),
        (None, None, None, None, Unit.months),
    ],
)
def test_contradictory_expiry_options_are_usage_errors(args):
    with pytest.raises(typer.BadParameter):
        _expiry(*args)


def test_extended_fields_keep_their_type():
    assert _fields(["member_since=2026-01-15", "visits=12", "vip=true", "spend=12.50"]) == {
        "member_since": "2026-01-15",
        "visits": 12,
        "vip": True,
        "spend": Decimal("12.50"),
    }
    with pytest.raises(typer.BadParameter):
        _fields(["novalue"])


def test_list_cursors_round_trip_and_bad_tokens_are_usage_errors():
    cursor = ListCursor(
        joined_at=datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC), customer_id="c:1"
    )
    assert decode_cursor(encode_cursor(cursor)) == cursor
    with pytest.raises(typer.BadParameter):
        decode_cursor("not-a-token")
