"""Program configuration: the example loads, bad keys report their path, version is by content."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from models.messages import OrderItem, OrderPaidData
from models.program import ProgramError, UnknownNameError, parse_program
from models.program_view import program_contract_view
from program_file import load_program

EXAMPLE = Path(__file__).resolve().parents[2] / "program.example.yaml"


@pytest.fixture
def raw() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return loaded


def edited(raw: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    copied = copy.deepcopy(raw)
    change(copied)
    return copied


def test_example_program_loads() -> None:
    program = load_program(EXAMPLE)
    assert program.currency == "EUR"
    assert program.tier_names == ("Bronze", "Silver", "Gold", "Platinum")
    assert program.base_tier is not None
    assert program.base_tier.name == "Bronze"
    assert program.qualification_period.kind == "rolling_months"
    assert program.qualification_period.months == 12
    assert program.membership_period is not None
    assert program.stamps is not None
    assert program.stamps.card_reward == "free-coffee"
    assert program.automations


def test_tiers_are_sorted_by_rank(raw: dict[str, Any]) -> None:
    program = parse_program(edited(raw, lambda d: d["tiers"].reverse()))
    assert [tier.rank for tier in program.tiers] == [0, 1, 2, 3]


def _set(section: str, index: int | None, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        target = d[section] if index is None else d[section][index]
        target[key] = value

    return change


BAD = [
    (_set("tiers", 2, "threshold", -1), "tiers[2].threshold: must be a number >= 0"),
    (_set("tiers", 2, "rank", 1), "tiers[2].rank: 1 is already used by tiers[1]"),
    (_set("tiers", 2, "name", "silver"), "tiers[2].name: 'silver' is already used by tiers[1]"),
    (_set("tiers", 2, "threshold", 100), "tiers[2].threshold: Gold (100) must be above Silver"),
    (
        _set("tiers", 1, "entry_rewards", ["welcome-silvr"]),
        "tiers[1].entry_rewards[0]: unknown reward 'welcome-silvr'; known rewards: welcome-silver",
    ),
    (_set("tiers", 1, "metric", "visits"), "tiers[1].metric: must be 'points_earned'"),
    (_set("stamps", None, "card_reward", "mug"), "stamps.card_reward: unknown reward 'mug'"),
    (_set("earn", None, "roundng", "floor"), "earn.roundng: is not a known setting"),
    (_set("earn", None, "rounding", "nearest"), "earn.rounding: must be 'floor'"),
    (_set("rewards", 4, "cost_stamps", 2), "rewards[4]: give cost_points or cost_stamps, not both"),
    (
        _set("rewards", 6, "cost_stamps", 8),
        "rewards[6].cost_stamps: 8 can never be redeemed: a stamp card of 8 completes",
    ),
    (
        _set("rewards", 4, "reward_id", "voucher-20"),
        "rewards[5].reward_id: 'voucher-20' is repeated",
    ),
    (
        lambda d: d.__setitem__("qualification_period", {"rolling_months": 0}),
        "qualification_period.months: must be >= 1",
    ),
    (
        lambda d: d.__setitem__("qualification_period", "weekly"),
        "qualification_period.kind: must be 'lifetime', 'calendar_year' or 'rolling_months'",
    ),
    (lambda d: d.__setitem__("currency", "euro"), "currency: must be a 3-letter ISO 4217"),
    (lambda d: d.pop("earn"), "earn: is required"),
    (
        lambda d: d["automations"][0]["manage_tier"].__setitem__("tier", "Platnum"),
        "automations[0].manage_tier.tier: unknown tier 'Platnum'; known tiers: Bronze, Silver",
    ),
    (
        lambda d: d["automations"][0]["when"][0].__setitem__("field", "colour"),
        "automations[0].when[0]: field 'colour' is not an order field",
    ),
]


@pytest.mark.parametrize(("change", "text"), BAD, ids=[text[:40] for _, text in BAD])
def test_bad_programs_name_the_bad_key(
    raw: dict[str, Any], change: Callable[[dict[str, Any]], None], text: str
) -> None:
    with pytest.raises(ProgramError) as caught:
        parse_program(edited(raw, change))
    assert text in str(caught.value)


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ProgramError, match=r"missing\.yaml: cannot read"):
        load_program(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("currency: [EUR\n", encoding="utf-8")
    with pytest.raises(ProgramError, match=r"bad\.yaml: not valid YAML"):
        load_program(bad)
    bad.write_text("- just a list\n", encoding="utf-8")
    with pytest.raises(ProgramError, match="must be a YAML mapping"):
        load_program(bad)


def test_version_is_stable_and_follows_content(raw: dict[str, Any]) -> None:
    program = parse_program(raw)
    assert len(program.version) == 12
    assert parse_program(copy.deepcopy(raw)).version == program.version
    assert load_program(EXAMPLE).version == program.version  # formatting does not matter
    reordered = edited(raw, lambda d: d["tiers"].reverse())
    assert parse_program(reordered).version == program.version
    changed = edited(raw, _set("tiers", 1, "threshold", 600))
    assert parse_program(changed).version != program.version


def test_tier_lookup_is_case_insensitive_and_lists_known_tiers() -> None:
    program = load_program(EXAMPLE)
    assert program.tier("gOLD").name == "Gold"
    assert program.find_tier("Platnum") is None
    with pytest.raises(UnknownNameError) as caught:
        program.tier("Platnum")
    assert (
        str(caught.value) == "unknown tier 'Platnum'; known tiers: Bronze, Silver, Gold, Platinum"
    )
    with pytest.raises(UnknownNameError, match="unknown reward 'mug'; known rewards"):
        program.reward("mug")


def test_qualifying_tier_and_no_tier(raw: dict[str, Any]) -> None:
    program = parse_program(raw)
    assert program.qualifying_tier({"points_earned": 0}) == program.tier("Bronze")
    assert program.qualifying_tier({"points_earned": 1500}) == program.tier("Gold")
    assert program.qualifying_tier({"points_earned": 99999}) == program.tier("Platinum")
    without_base = parse_program(edited(raw, lambda d: d["tiers"].pop(0)))
    assert without_base.base_tier is None
    assert without_base.qualifying_tier({"points_earned": 499}) is None


@pytest.mark.parametrize(
    ("rounding", "amount", "multiplier", "points"),
    [
        ("floor", "129.90", "1", 129),
        ("half_up", "129.50", "1", 130),
        ("half_even", "128.50", "1", 128),
        ("ceil", "129.10", "1", 130),
        ("floor", "129.90", "1.5", 194),
    ],
)
def test_points_rounding(
    raw: dict[str, Any], rounding: str, amount: str, multiplier: str, points: int
) -> None:
    program = parse_program(edited(raw, _set("earn", None, "rounding", rounding)))
    assert program.earn.points_for(Decimal(amount), Decimal(multiplier)) == points


def test_stamp_qualification_and_automation_match() -> None:
    program = load_program(EXAMPLE)
    assert program.stamps is not None
    assert program.stamps.qualifies("ANY", ("coffee",))
    assert not program.stamps.qualifies("MUG", ("merch",))
    order = OrderPaidData(
        order_id="o",
        total=Decimal("60.00"),
        currency="EUR",
        items=(OrderItem(sku="T", quantity=1, unit_price=Decimal("60.00")),),
        extended_fields={"channel": "events"},
    )
    automation = program.automations[0]
    assert automation.matches(order)
    assert not automation.matches(order.model_copy(update={"total": Decimal("49.99")}))
    assert not automation.matches(order.model_copy(update={"extended_fields": {}}))


def test_contract_view_shape() -> None:
    program = load_program(EXAMPLE)
    view = program_contract_view(program)
    assert set(view) == {"version", "currency", "tiers", "rewards", "earn"}
    assert view["version"] == program.version
    assert [tier["name"] for tier in view["tiers"]] == ["Bronze", "Silver", "Gold", "Platinum"]
    for tier in view["tiers"]:
        assert set(tier) == {"name", "rank", "metric", "threshold", "entry_rewards"}
        assert isinstance(tier["threshold"], str)
    assert view["tiers"][1]["entry_rewards"] == ["welcome-silver"]
    for reward in view["rewards"]:
        assert (
            {"reward_id", "name"}
            <= set(reward)
            <= {
                "reward_id",
                "name",
                "cost_points",
                "cost_stamps",
                "value",
                "valid_days",
                "points_rate",
            }
        )
    [rate] = [r for r in view["rewards"] if "points_rate" in r]
    assert rate["points_rate"] == {
        "points": 100,
        "amount": "1.00",
        "min_points": 500,
        "max_points": 10000,
    }
    assert {
        "reward_id": "tote-bag",
        "name": "Canvas tote bag",
        "cost_points": 300,
        "value": {"kind": "product", "product": "tote-bag"},
    } in view["rewards"]
    welcome = next(r for r in view["rewards"] if r["reward_id"] == "welcome-gold")
    assert welcome["value"] == {"kind": "amount_off", "amount": "10"}
    assert welcome["valid_days"] == 90
    assert view["earn"]["points_per_currency_unit"] == "1"


def test_program_show_json_prints_the_contract_view() -> None:
    result = CliRunner().invoke(app, ["program", "show", "--json", "--file", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    view = json.loads(result.output)
    assert set(view) == {"version", "currency", "tiers", "rewards", "earn"}
    result = CliRunner().invoke(app, ["program", "show", "--file", str(EXAMPLE)])
    assert result.exit_code == 0
    assert "Platinum" in result.output


def test_program_show_reports_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "program.yaml"
    bad.write_text("currency: EUR\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["program", "show", "--file", str(bad)])
    assert result.exit_code == 1
