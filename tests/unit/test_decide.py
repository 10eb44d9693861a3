"""decide(): one rule per message type, and the shape of a decision."""

from __future__ import annotations

import typing

from models.decide import _RULES
from models.messages import CustomerUpserted, InputMessage
from tests.unit.factories import NOW, apply, joined, msg
from topics.codec import INPUT_TYPES


def test_every_input_type_has_exactly_one_rule() -> None:
    union = typing.get_args(typing.get_args(InputMessage)[0])
    handled = {*_RULES, CustomerUpserted}
    assert set(union) == handled
    assert {cls.model_fields["type"].default for cls in handled} == set(INPUT_TYPES)


def test_outputs_are_stamped_with_now_and_state_with_the_message_time() -> None:
    decision = apply(joined(), msg("tier.change", {"tier": "Gold"}))
    assert {o.occurred_at for o in decision.outputs} == {NOW}
    assert decision.state.tier_since == decision.activity[0].at
    assert decision.state.tier_since != NOW
