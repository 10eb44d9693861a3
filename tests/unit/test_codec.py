"""The type registry exists once: derived from the domain's unions, used by decoder and schemas."""

from __future__ import annotations

import pytest

from cli.schemas import build_schemas
from models.decide import _RULES
from models.messages import CustomerUpserted
from topics.codec import (
    INPUT_CLASSES,
    INPUT_TYPES,
    OUTPUT_TYPES,
    MessageError,
    encode_key,
    parse_message,
    parse_output,
)


def test_registry_lists_every_input_class_once() -> None:
    assert len(INPUT_TYPES) == len(set(INPUT_TYPES)) == len(INPUT_CLASSES)
    assert "order.paid" in INPUT_TYPES
    assert "tier.changed" in OUTPUT_TYPES


def test_every_registered_type_has_a_schema_and_a_rule() -> None:
    schemas = build_schemas()
    for kind in (*INPUT_TYPES, *OUTPUT_TYPES):
        assert f"{kind}.schema.json" in schemas
    # customer.upserted is decided before the dispatch table (it may create the customer).
    assert set(_RULES) | {CustomerUpserted} == set(INPUT_CLASSES)


def test_unknown_type_names_the_registry() -> None:
    with pytest.raises(MessageError) as refused:
        parse_message(b'{"type": "order.shipped", "id": "x"}')
    assert refused.value.code == "unknown_type"
    assert "order.paid" in refused.value.message


def test_output_round_trip_and_key() -> None:
    raw = (
        b'{"id": "e:tier.changed", "customer_id": "c", "occurred_at": "2025-01-01T00:00:00Z",'
        b' "type": "tier.changed", "data": {"from_tier": null, "to_tier": "Gold",'
        b' "direction": "up", "cause": {"type": "order.paid", "id": "e"},'
        b' "program_version": "1", "notified": false}}'
    )
    out = parse_output(raw)
    assert out.type == "tier.changed"
    assert encode_key("ü") == "ü".encode()
