"""Reward codes: a keyed hash of each grant in the program's format, used on paid orders."""

from __future__ import annotations

import math

import pytest

from models.decide import decide
from models.program import ProgramError
from models.reward_codes import (
    DEFAULT_ALPHABET,
    CodeFormat,
    normalize_code,
    reward_code,
)
from models.state import CustomerState
from tests.unit.factories import (
    CODE_KEY,
    NOW,
    PROGRAM,
    apply,
    coffee,
    joined,
    kinds,
    make_program,
    msg,
    order,
    upsert,
)
from topics.codec import MessageError


def stamps(delta: int):
    return msg("stamps.adjust", {"delta": delta})


def grant_outputs(decision):
    return [o for o in decision.outputs if o.type == "reward.granted"]


def customer(customer_id: str, *messages) -> CustomerState:
    state = None
    for message in (upsert(email=f"{customer_id}@example.com"), *messages):
        state = decide(
            state,
            message.model_copy(update={"customer_id": customer_id}),
            PROGRAM,
            NOW,
            code_key=CODE_KEY,
        ).state
    assert state is not None
    return state


def test_every_grant_gets_a_code_in_the_program_format_and_the_output_carries_it() -> None:
    decision = apply(joined(), order("o1", "600.00", [coffee(5)]))  # Silver and a full card
    granted = grant_outputs(decision)
    assert {g.data.origin for g in granted} == {"entry", "card"}
    for output in granted:
        grant = decision.state.grant(output.data.grant_id)
        assert grant is not None
        assert output.data.code == grant.code
        assert len(grant.code) == 12
        assert set(grant.code) <= set(DEFAULT_ALPHABET)
    redeemed = apply(
        joined(msg("points.adjust", {"delta": 400})),
        msg("reward.redeem", {"reward_id": "tote-bag"}),
    )
    [grant] = redeemed.state.rewards
    assert (grant.status, grant.origin) == ("issued", "redemption")
    assert grant_outputs(redeemed)[0].data.code == grant.code


def test_codes_are_the_same_on_replay_and_depend_on_key_customer_and_grant() -> None:
    message = stamps(5)
    first = decide(joined(), message, PROGRAM, NOW, code_key=CODE_KEY).state.rewards[0].code
    again = decide(joined(), message, PROGRAM, NOW, code_key=CODE_KEY).state.rewards[0].code
    other_key = decide(joined(), message, PROGRAM, NOW, code_key="another-secret-key").state
    assert first == again
    assert other_key.rewards[0].code != first
    fmt = CodeFormat()
    assert reward_code(CODE_KEY, "c-1", "g-1", fmt) != reward_code(CODE_KEY, "c-2", "g-1", fmt)
    assert reward_code(CODE_KEY, "c-1", "g-1", fmt) != reward_code(CODE_KEY, "c-1", "g-2", fmt)


def test_the_program_sets_prefix_length_and_alphabet_for_all_or_per_reward() -> None:
    program = make_program(
        reward_codes={"prefix": "SHOP-", "length": 16, "alphabet": "23456789ABCDEFGH"},
        rewards=[
            {"reward_id": "welcome-silver", "name": "5 EUR off", "code": {"prefix": "WS-"}},
            {"reward_id": "welcome-gold", "name": "10 EUR off"},
            {"reward_id": "free-coffee", "name": "Free coffee", "code": {"length": 20}},
        ],
    )
    state = joined(order("o1", "600.00", [coffee(5)]), program=program)
    codes = {g.reward_id: g.code for g in state.rewards}
    assert codes["welcome-silver"].startswith("WS-")
    assert len(codes["welcome-silver"]) == 3 + 16
    assert codes["free-coffee"].startswith("SHOP-")
    assert len(codes["free-coffee"]) == 5 + 20
    assert set(codes["free-coffee"][5:]) <= set("23456789ABCDEFGH")


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"reward_codes": {"length": 10}}, "reward_codes", ["49.5 bits", "at least 11"]),
        ({"reward_codes": {"alphabet": "0123456789", "length": 14}}, "reward_codes", ["46.5"]),
        ({"reward_codes": {"alphabet": "ABCDEFGHIJKLMNOP0123"}}, "reward_codes", ["0 and O"]),
        ({"reward_codes": {"alphabet": "abcdefghjk"}}, "reward_codes", ["capital letters"]),
        ({"reward_codes": {"prefix": "ab c"}}, "reward_codes", ["prefix"]),
        (
            {
                "rewards": [
                    *PROGRAM.model_dump(mode="json")["rewards"][:-1],
                    {
                        "reward_id": "cookie",
                        "name": "Cookie",
                        "cost_stamps": 3,
                        "code": {"length": 8},
                    },
                ]
            },
            "rewards[4].code",
            ["fewer than the 50"],
        ),
    ],
)
def test_a_weak_or_confusing_code_format_is_refused(change, path, words) -> None:
    with pytest.raises(ProgramError) as excinfo:
        make_program(**change)
    text = str(excinfo.value)
    assert path in text
    for word in words:
        assert word in text


def test_the_default_format_is_strong_enough() -> None:
    assert CodeFormat().bits == pytest.approx(12 * math.log2(31))
    assert CodeFormat().bits >= 50


def test_an_order_with_a_code_uses_the_grant_once() -> None:
    state = joined(stamps(5))
    [grant] = state.rewards
    typed = " " + grant.code.lower() + " "  # checkouts send what the customer typed
    decision = apply(state, order("o1", "3.00", reward_codes=[typed]))
    [used] = decision.state.rewards
    assert (used.status, used.used_on_order) == ("used", "o1")
    [output] = [o for o in decision.outputs if o.type == "reward.used"]
    assert (output.data.grant_id, output.data.code, output.data.order_id) == (
        grant.grant_id,
        grant.code,
        "o1",
    )
    assert "reward_used" in [a.kind for a in decision.activity]
    again = apply(decision.state, order("o2", "3.00", reward_codes=[grant.code]))
    assert "reward.used" not in kinds(again)
    [note] = [a for a in again.activity if a.kind == "reward_code_not_used"]
    assert "already used" in note.details["reason"]
    assert again.state.order("o2") is not None  # the order itself still counts


def test_an_unknown_or_another_customers_code_is_recorded_and_never_refuses_the_order() -> None:
    other = customer("c-2", stamps(5))
    theirs = other.rewards[0].code
    decision = apply(joined(), order("o1", "30.00", reward_codes=[theirs, "NOPE-NOPE"]))
    assert decision.rejection is None
    assert decision.state.points_balance == 30
    notes = [a for a in decision.activity if a.kind == "reward_code_not_used"]
    assert [n.details["code"] for n in notes] == [theirs, "NOPE-NOPE"]
    assert all("no reward of this customer" in n.details["reason"] for n in notes)
    assert "reward.used" not in kinds(decision)


def test_revoking_a_used_grant_is_refused_and_an_issued_redemption_gives_back_its_cost() -> None:
    state = joined(stamps(5))
    used = apply(state, order("o1", "3.00", reward_codes=[state.rewards[0].code])).state
    refused = apply(used, msg("reward.revoke", {"grant_id": used.rewards[0].grant_id}))
    assert refused.rejection is not None
    assert refused.rejection.code == "grant_not_revocable"
    assert "used on order o1" in refused.rejection.reason
    redeemed = joined(
        msg("points.adjust", {"delta": 400}), msg("reward.redeem", {"reward_id": "tote-bag"})
    )
    revoked = apply(redeemed, msg("reward.revoke", {"grant_id": redeemed.rewards[0].grant_id}))
    assert revoked.rejection is None
    assert revoked.state.points_balance == 400
    assert revoked.state.rewards[0].status == "revoked"


def test_a_code_is_normalised_like_a_checkout_types_it() -> None:
    assert normalize_code(" ab cd\t") == "ABCD"


def test_the_read_view_shows_code_origin_and_status() -> None:
    [reward] = joined(stamps(5)).public_view()["rewards"]
    assert set(reward) == {"grant_id", "reward_id", "code", "origin", "status"}
    assert (reward["origin"], reward["status"]) == ("card", "issued")


def test_too_many_codes_on_one_order_are_refused_at_parse_time() -> None:
    with pytest.raises(MessageError, match="reward_codes"):
        order("o1", "3.00", reward_codes=[f"C{n}" for n in range(21)])
