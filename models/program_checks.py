"""Checks across the program's sections: references, uniqueness, threshold order.

They run inside ``Program``'s own validator when every field is valid, and on the entries that
are valid on their own when some are not, so that one run reports every problem of the file,
each with its path (``tiers[2].threshold: ...``).
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from models.values import ConfigModel, format_decimal

if TYPE_CHECKING:
    from models.automations import Automation
    from models.program import Reward, Tier
    from models.program_earn import StampRules
    from models.reward_codes import CodeFormat

CROSS_CHECK = "program_cross_check"
"""Error type of the cross-section problems raised by ``Program``'s validator."""


def known(kind: str, names: list[str]) -> str:
    """Return ``known <kind>: a, b`` (or ``(none)``) for an error message."""
    return f"known {kind}: {', '.join(names) if names else '(none)'}"


def _tier_problems(tiers: list[tuple[int, Tier]]) -> list[str]:
    problems = []
    seen_names: dict[str, int] = {}
    seen_ranks: dict[int, int] = {}
    for index, tier in tiers:
        key = tier.name.casefold()
        if key in seen_names:
            problems.append(
                f"tiers[{index}].name: {tier.name!r} is already used by "
                f"tiers[{seen_names[key]}]; tier names must be unique (ignoring case)"
            )
        seen_names.setdefault(key, index)
        if tier.rank in seen_ranks:
            problems.append(
                f"tiers[{index}].rank: {tier.rank} is already used by "
                f"tiers[{seen_ranks[tier.rank]}]; ranks must be unique"
            )
        seen_ranks.setdefault(tier.rank, index)
    ordered = sorted(tiers, key=lambda pair: pair[1].rank)
    for metric in sorted({tier.metric for _, tier in tiers}):
        same = [pair for pair in ordered if pair[1].metric == metric]
        for (_, lower), (index, higher) in pairwise(same):
            if higher.threshold <= lower.threshold:
                problems.append(
                    f"tiers[{index}].threshold: {higher.name} "
                    f"({format_decimal(higher.threshold)}) must be above {lower.name} "
                    f"({format_decimal(lower.threshold)}), the next lower tier on {metric}"
                )
    return problems


def cross_problems(
    *,
    tiers: list[tuple[int, Tier]],
    rewards: list[tuple[int, Reward]],
    stamps: StampRules | None,
    automations: list[tuple[int, Automation]],
    reward_ids: list[str],
    tier_names: list[str],
) -> list[str]:
    """Problems between sections (references, uniqueness, order), each with its YAML path.

    The sections may be partial (only the entries that validated, with their positions in
    the file) so that these problems are reported together with the field errors;
    ``reward_ids`` and ``tier_names`` are every name the file declares, valid entry or not,
    so that a reference to an entry with another problem is not reported as unknown.
    """
    problems = _tier_problems(tiers)
    seen: set[str] = set()
    for index, reward in rewards:
        if reward.reward_id in seen:
            problems.append(f"rewards[{index}].reward_id: {reward.reward_id!r} is repeated")
        seen.add(reward.reward_id)
    declared = set(reward_ids)
    for index, tier in tiers:
        for position, reward_id in enumerate(tier.entry_rewards):
            if reward_id not in declared:
                problems.append(
                    f"tiers[{index}].entry_rewards[{position}]: unknown reward "
                    f"{reward_id!r}; {known('rewards', reward_ids)}"
                )
    if stamps is not None:
        if stamps.card_reward is not None and stamps.card_reward not in declared:
            problems.append(
                f"stamps.card_reward: unknown reward {stamps.card_reward!r}; "
                f"{known('rewards', reward_ids)}"
            )
        if (stamps.card_reward is None) != (stamps.card_size is None):
            problems.append("stamps: give card_size and card_reward together, or neither")
    card_size = stamps.card_size if stamps else None
    for index, reward in rewards:
        # A full card spends its stamps at once, so the balance never reaches card_size.
        if card_size is not None and (reward.cost_stamps or 0) >= card_size:
            problems.append(
                f"rewards[{index}].cost_stamps: {reward.cost_stamps} can never be redeemed: "
                f"a stamp card of {card_size} completes and spends its stamps first; "
                f"price it below {card_size} stamps or make it the card reward"
            )
    folded = {name.casefold() for name in tier_names}
    for index, automation in automations:
        target = automation.manage_tier.tier
        if target is not None and target.casefold() not in folded:
            problems.append(
                f"automations[{index}].manage_tier.tier: unknown tier {target!r}; "
                f"{known('tiers', tier_names)}"
            )
    return problems


def code_problems(formats: CodeFormat, rewards: list[tuple[int, Reward]]) -> list[str]:
    """Rewards whose own code format, merged with the program's, is not a valid format."""
    problems: list[str] = []
    for index, reward in rewards:
        try:
            formats.merged(reward.code)
        except ValidationError as exc:
            problems.extend(f"rewards[{index}].code: {e['msg']}" for e in exc.errors())
    return problems


def _valid_entries(value: Any, model: type[ConfigModel]) -> list[tuple[int, Any]]:
    """The entries of a list section that validate on their own, with their positions."""
    if not isinstance(value, list | tuple):
        return []
    valid = []
    for index, entry in enumerate(value):
        try:
            valid.append((index, model.model_validate(entry)))
        except ValidationError:
            continue  # its own errors are already among the field errors
    return valid


def _declared(value: Any, key: str) -> list[str]:
    """Every ``key`` string a list section declares, whether its entry validates or not."""
    if not isinstance(value, list | tuple):
        return []
    return [e[key] for e in value if isinstance(e, Mapping) and isinstance(e.get(key), str)]


def partial_cross_problems(source: Mapping[str, Any]) -> list[str]:
    """Cross-section problems among the entries that validate, for a program that does not."""
    # Imported here: program.py imports this module for its own validator.
    from models.automations import Automation  # noqa: PLC0415
    from models.program import Reward, Tier  # noqa: PLC0415
    from models.program_earn import StampRules  # noqa: PLC0415
    from models.reward_codes import CodeFormat  # noqa: PLC0415

    stamps = _valid_entries([source.get("stamps")], StampRules) if source.get("stamps") else []
    rewards = _valid_entries(source.get("rewards"), Reward)
    formats = _valid_entries([source.get("reward_codes") or {}], CodeFormat)
    codes = code_problems(formats[0][1], rewards) if formats else []
    return [
        *cross_problems(
            tiers=_valid_entries(source.get("tiers"), Tier),
            rewards=rewards,
            stamps=stamps[0][1] if stamps else None,
            automations=_valid_entries(source.get("automations"), Automation),
            reward_ids=_declared(source.get("rewards"), "reward_id"),
            tier_names=_declared(source.get("tiers"), "name"),
        ),
        *codes,
    ]
