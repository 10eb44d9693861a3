"""The program as the contract shows it: ``loyalty program show --json``."""

from __future__ import annotations

from typing import Any

from models.program import Program, Reward
from models.values import format_decimal


def _points_rules(program: Program) -> dict[str, Any]:
    """The points settings beyond the rate: expiry, minimum, multiplier, pending, filters."""
    rules = program.earn
    view: dict[str, Any] = {}
    if rules.points_expire_after_months is not None:
        view["points_expire_after_months"] = rules.points_expire_after_months
    view["points_min_order_value"] = format_decimal(rules.min_order_value)
    view["multiplier_tier"] = rules.multiplier_tier
    if rules.points_pending_days is not None:
        view["points_pending_days"] = rules.points_pending_days
    for name in (
        "qualifying_skus",
        "qualifying_categories",
        "excluded_skus",
        "excluded_categories",
    ):
        if getattr(rules, name):
            view[f"points_{name}"] = list(getattr(rules, name))
    return view


def _reward_view(reward: Reward) -> dict[str, Any]:
    entry: dict[str, Any] = {"reward_id": reward.reward_id, "name": reward.name}
    if reward.cost_points is not None:
        entry["cost_points"] = reward.cost_points
    if reward.cost_stamps is not None:
        entry["cost_stamps"] = reward.cost_stamps
    if reward.value is not None:
        entry["value"] = reward.value.model_dump(mode="json", exclude_none=True)
    if reward.valid_days is not None:
        entry["valid_days"] = reward.valid_days
    if reward.points_rate is not None:
        entry["points_rate"] = reward.points_rate.model_dump(mode="json", exclude_none=True)
    return entry


def program_contract_view(program: Program) -> dict[str, Any]:
    """Return the program as ``loyalty program show --json`` prints it (CONTRACT.md)."""
    earn: dict[str, Any] = {
        "points_per_currency_unit": format_decimal(program.earn.points_per_currency_unit),
        "rounding": program.earn.rounding,
    }
    earn |= _points_rules(program)
    if program.stamps is not None:
        stamps = program.stamps
        if stamps.mode == "per_order":
            earn["stamps_per_order"] = stamps.stamps_per_order
        else:
            earn["stamps_per_qualifying_item"] = stamps.stamps_per_item
        earn["stamps_min_order_value"] = format_decimal(stamps.min_order_value)
        if stamps.card_size is not None:
            earn["stamp_card_size"] = stamps.card_size
            earn["stamp_card_reward"] = stamps.card_reward
    rewards = []
    for reward in program.rewards:
        entry = _reward_view(reward)
        rewards.append(entry)
    return {
        "version": program.version,
        "currency": program.currency,
        "tiers": [
            {
                "name": tier.name,
                "rank": tier.rank,
                "metric": tier.metric,
                "threshold": format_decimal(tier.threshold),
                "entry_rewards": list(tier.entry_rewards),
            }
            for tier in program.tiers
        ],
        "rewards": rewards,
        "earn": earn,
    }
