"""Admin command builders: contract-valid envelopes, fresh or given ids, clear refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from admin import client
from models.messages import AdjustPoints, ChangeTier, ManageTier, RedeemReward, RevokeReward
from topics.codec import MessageError, parse_message

AT = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def test_adjust_points_builds_a_valid_command_with_a_fresh_id():
    one = client.adjust_points("c-1", 500, internal_note="ticket 4711", expires_in_months=12)
    two = client.adjust_points("c-1", 500)
    assert one.id != two.id
    assert one.topic == "loyalty.adjustments"
    message = parse_message(one.envelope)
    assert isinstance(message, AdjustPoints)
    assert message.data.delta == 500
    assert message.data.expires_in_months == 12
    assert message.source == "admin"
    assert "customer_note" not in one.envelope["data"]  # unset options are left out


def test_a_caller_given_id_and_time_make_the_command_repeatable():
    first = client.change_tier("c-1", "Gold", command_id="crm-77", actor="ana", occurred_at=AT)
    again = client.change_tier("c-1", "Gold", command_id="crm-77", actor="ana", occurred_at=AT)
    assert first.value() == again.value()
    message = parse_message(first.value())
    assert isinstance(message, ChangeTier)
    assert (message.id, message.actor, message.occurred_at) == ("crm-77", "ana", AT)
    assert first.topic == "loyalty.tier-commands"


def test_zero_deltas_are_refused_with_the_models_message():
    with pytest.raises(MessageError, match="must not be 0"):
        client.adjust_points("c-1", 0)
    with pytest.raises(MessageError, match="stamps"):
        client.adjust_stamps("c-1", 0)


def test_rewards_and_stamps():
    assert isinstance(
        parse_message(client.redeem_reward("c-1", "free-coffee").envelope), RedeemReward
    )
    rate = parse_message(client.redeem_reward("c-1", "points-off", points=700).envelope)
    assert isinstance(rate, RedeemReward)
    assert rate.data.points == 700
    revoke = client.revoke_reward("c-1", "g-1", internal_note="sent by mistake")
    assert isinstance(parse_message(revoke.envelope), RevokeReward)
    stamps = client.adjust_stamps("c-1", -2)
    assert parse_message(stamps.envelope).type == "stamps.adjust"


def test_manage_tier_for_a_group_is_keyed_by_the_group():
    command = client.manage_tier(
        "upgrade",
        "specific",
        group_id="vip-event",
        tier="Gold",
        expiry={"kind": "duration", "months": 3},
        notify=True,
    )
    message = parse_message(command.envelope)
    assert isinstance(message, ManageTier)
    assert command.customer_id == "group:vip-event"
    assert message.data.group_id == "vip-event"


def test_manage_tier_needs_exactly_one_target_and_a_coherent_strategy():
    with pytest.raises(ValueError, match="exactly one"):
        client.manage_tier("upgrade", "rules")
    with pytest.raises(MessageError, match="strategy 'specific' needs a tier"):
        client.manage_tier("upgrade", "specific", customer_id="c-1")
