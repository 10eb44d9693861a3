"""The loyalty program configuration: one YAML file, validated at load, versioned by content.

Rules stated here (the rules modules rely on them):

- Points for an order are its earning base (the order less shipping and tax, or only its
  qualifying items) times ``points_per_currency_unit`` times the tier's ``points_multiplier``,
  rounded once per order with ``earn.rounding`` (default ``floor``); see ``program_earn``.
- Tiers are kept in ascending rank. A customer holds the highest-ranked tier whose threshold
  they reach on that tier's metric within the qualification period. When the lowest tier has
  threshold 0 it is the base tier every active customer holds; otherwise a customer who reaches
  no threshold has no tier (``None``).
- ``version`` is a hash of the canonical (validated, defaults filled) content, so reformatting
  the YAML keeps the version and any change of meaning changes it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from models.automations import Automation
from models.outputs import NotificationKind
from models.program_checks import (
    CROSS_CHECK,
    code_problems,
    cross_problems,
    known,
    partial_cross_problems,
)
from models.program_earn import (
    EarnRules,
    Months,
    Quantity,
    StampRules,
)
from models.reward_codes import CodeFormat, CodeFormatOverride
from models.reward_value import MAX_VALID_DAYS, PointsRate, RewardValue
from models.values import (
    ConfigModel,
    CurrencyCode,
    Name,
    NonNegativeInt,
    PositiveInt,
    explain_each,
)

Metric = Literal["points_earned", "amount_spent", "orders"]
EntryRewardsPolicy = Literal["once", "every_entry"]


class ProgramError(ValueError):
    """The program file is invalid; the message names the path of every bad key."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)

    @classmethod
    def of(cls, problems: list[str]) -> ProgramError:
        """One error listing every problem, one per line when there are several."""
        if len(problems) == 1:
            return cls(problems[0], tuple(problems))
        listed = "\n".join(f"  - {problem}" for problem in problems)
        return cls(f"{len(problems)} problems:\n{listed}", tuple(problems))


class UnknownNameError(LookupError):
    """A tier or reward name that the program does not define; the message lists known ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Tier(ConfigModel):
    name: Name
    rank: NonNegativeInt
    metric: Metric = "points_earned"
    threshold: Quantity
    entry_rewards: tuple[Name, ...] = ()
    benefits: tuple[str, ...] = ()
    points_multiplier: Quantity = Decimal(1)


def _period(value: Any) -> Any:
    if isinstance(value, str):
        return {"kind": value}
    if isinstance(value, Mapping) and set(value) == {"rolling_months"}:
        return {"kind": "rolling_months", "months": value["rolling_months"]}
    return value


class QualificationPeriodModel(ConfigModel):
    """Which activity counts toward a tier: all of it, this calendar year, or the last N months."""

    kind: Literal["lifetime", "calendar_year", "rolling_months"]
    months: Months | None = None

    @model_validator(mode="after")
    def _months_for_rolling(self) -> QualificationPeriodModel:
        if (self.kind == "rolling_months") != (self.months is not None):
            raise PydanticCustomError(
                "period",
                "write lifetime, calendar_year or {rolling_months: N} with N >= 1",
                {},
            )
        return self


QualificationPeriod = Annotated[QualificationPeriodModel, BeforeValidator(_period)]


class MembershipPeriod(ConfigModel):
    """How long a tier, once reached or set by hand, is kept whatever the spend."""

    months: Months


_RETIRED_TOGGLES = {
    "tier_changed": "split into tier_upgraded (with the entry rewards and their codes), "
    "tier_downgraded (down and expiry) and tier_renewed",
    "reward_granted": "every reward now comes in the email of the event that granted it: "
    "tier_upgraded (entry rewards), reward_redeemed, stamp_card_completed",
}


class EmailToggles(ConfigModel):
    """Which emails the program sends, one kind per event; a command may turn its own off."""

    tier_upgraded: bool = True
    tier_downgraded: bool = True
    tier_renewed: bool = True
    reward_redeemed: bool = True
    stamp_card_completed: bool = True
    reward_revoked: bool = False
    points_expired: bool = False
    points_expiring: bool = True
    """A reminder before a lot of points expires (``reminders.points_expiring_days``)."""
    tier_expiring: bool = True
    """A reminder before a temporary tier or a membership hold ends and the customer would
    drop (``reminders.tier_expiring_days``)."""

    @model_validator(mode="before")
    @classmethod
    def _retired(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            for name, replacement in _RETIRED_TOGGLES.items():
                if name in value:
                    raise PydanticCustomError(
                        "retired_toggle",
                        "{name} is no longer a toggle: {replacement}",
                        {"name": name, "replacement": replacement},
                    )
        return value

    def enabled(self, kind: NotificationKind) -> bool:
        """Return whether emails of this kind are on."""
        return bool(getattr(self, kind))


ReminderDays = Annotated[int, Field(strict=True, ge=1, le=3660)]


class Reminders(ConfigModel):
    """How many days ahead reminders go; none: no reminder of that kind."""

    points_expiring_days: ReminderDays | None = None
    """Days before a lot of points expires: one ``points_expiring`` email per lot still held."""
    tier_expiring_days: ReminderDays | None = None
    """Days before a temporary tier or a membership hold ends, when the customer would then
    hold a lower tier: one ``tier_expiring`` email per ending."""


class Reward(ConfigModel):
    """A catalog reward: bought with points or stamps, or neither (entry or card rewards only)."""

    reward_id: Name
    name: Name
    description: str | None = None
    cost_points: PositiveInt | None = None
    cost_stamps: PositiveInt | None = None
    code: CodeFormatOverride | None = None
    """This reward's own code format (prefix, length, alphabet); the rest from reward_codes."""
    value: RewardValue | None = None
    """What the coupon is worth at checkout (amount off, percentage off, or a product)."""
    valid_days: Annotated[int, Field(strict=True, ge=1, le=MAX_VALID_DAYS)] | None = None
    """Days a granted coupon stays valid; none: no expiry."""
    points_rate: PointsRate | None = None
    """Priced as a rate: the customer chooses how many points to spend (in steps)."""

    @model_validator(mode="after")
    def _one_cost(self) -> Reward:
        if self.cost_points is not None and self.cost_stamps is not None:
            raise PydanticCustomError(
                "reward_cost", "give cost_points or cost_stamps, not both", {}
            )
        if self.points_rate is not None and (
            self.cost_points is not None or self.cost_stamps is not None or self.value is not None
        ):
            raise PydanticCustomError(
                "reward_cost",
                "a reward priced with points_rate has no cost_points, cost_stamps or value: "
                "its value follows from the points spent",
                {},
            )
        return self


def _known(kind: str, names: list[str]) -> str:
    return known(kind, names)


class Program(ConfigModel):
    """The program in force; ``tiers`` in ascending rank, every reference checked at load."""

    name: str = "Loyalty program"
    currency: CurrencyCode
    earn: EarnRules
    stamps: StampRules | None = None
    tiers: tuple[Tier, ...] = ()
    qualification_period: QualificationPeriod = QualificationPeriodModel(kind="lifetime")
    membership_period: MembershipPeriod | None = None
    emails: EmailToggles = EmailToggles()
    reminders: Reminders = Reminders()
    reward_codes: CodeFormat = CodeFormat()
    """The format of every reward code, unless a reward sets its own ``code``."""
    rewards: tuple[Reward, ...] = ()
    groups: dict[Name, str] = Field(default_factory=dict)
    automations: tuple[Automation, ...] = ()
    entry_rewards_per_tier: EntryRewardsPolicy = "once"
    """``once``: a tier's entry rewards go to a customer once (re-entering grants none);
    ``every_entry``: on every entry by an upward move."""

    @model_validator(mode="after")
    def _cross_check(self) -> Program:
        problems = cross_problems(
            tiers=list(enumerate(self.tiers)),
            rewards=list(enumerate(self.rewards)),
            stamps=self.stamps,
            automations=list(enumerate(self.automations)),
            reward_ids=[reward.reward_id for reward in self.rewards],
            tier_names=[tier.name for tier in self.tiers],
        )
        problems += code_problems(self.reward_codes, list(enumerate(self.rewards)))
        if problems:
            raise PydanticCustomError(CROSS_CHECK, "; ".join(problems), {})
        # Sorted only after the checks, so error paths count tiers as the file lists them.
        object.__setattr__(self, "tiers", tuple(sorted(self.tiers, key=lambda t: t.rank)))
        return self

    def code_format(self, reward_id: str) -> CodeFormat:
        """Return the code format of this reward's grants."""
        reward = self.find_reward(reward_id)
        return self.reward_codes.merged(reward.code if reward else None)

    @cached_property
    def version(self) -> str:
        """Return the content hash: first 12 hex digits of sha256 over the canonical JSON."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]

    @property
    def tier_names(self) -> tuple[str, ...]:
        """Return the tier names in ascending rank."""
        return tuple(tier.name for tier in self.tiers)

    @property
    def base_tier(self) -> Tier | None:
        """Return the tier every active customer holds (lowest, threshold 0), if there is one."""
        if self.tiers and self.tiers[0].threshold == 0:
            return self.tiers[0]
        return None

    def find_tier(self, name: str) -> Tier | None:
        """Return the tier with this name (case-insensitive), or ``None``."""
        key = name.strip().casefold()
        return next((tier for tier in self.tiers if tier.name.casefold() == key), None)

    def tier(self, name: str) -> Tier:
        """Return the tier with this name (case-insensitive) or raise ``UnknownNameError``."""
        found = self.find_tier(name)
        if found is None:
            raise UnknownNameError(
                f"unknown tier {name!r}; {_known('tiers', list(self.tier_names))}"
            )
        return found

    def find_reward(self, reward_id: str) -> Reward | None:
        """Return the catalog reward with this id, or ``None``."""
        return next((reward for reward in self.rewards if reward.reward_id == reward_id), None)

    def reward(self, reward_id: str) -> Reward:
        """Return the catalog reward with this id or raise ``UnknownNameError``."""
        found = self.find_reward(reward_id)
        if found is None:
            known = [reward.reward_id for reward in self.rewards]
            raise UnknownNameError(f"unknown reward {reward_id!r}; {_known('rewards', known)}")
        return found

    def qualifying_tier(self, metrics: Mapping[Metric, Decimal | int]) -> Tier | None:
        """Return the highest-ranked tier whose threshold the metrics reach, or ``None``."""
        reached = None
        for tier in self.tiers:
            if Decimal(metrics.get(tier.metric, 0)) >= tier.threshold:
                reached = tier
        return reached


def parse_program(source: Mapping[str, Any]) -> Program:
    """Validate a program given as a mapping (the YAML file read at the edge).

    Raises ``ProgramError`` listing every problem at once, each with its path in the file
    (``tiers[2].threshold: ...``): field errors, and the cross-section ones (references,
    uniqueness, threshold order) among the entries that are valid on their own.
    """
    if not isinstance(source, Mapping):
        raise ProgramError("the program must be a YAML mapping (currency:, earn:, tiers: ...)")
    try:
        return Program.model_validate(dict(source))
    except ValidationError as exc:
        fields = explain_each(
            exc, skip=frozenset({"function-after"}), drop=frozenset({CROSS_CHECK})
        )
        problems = list(dict.fromkeys([*fields, *partial_cross_problems(source)]))
        raise ProgramError.of(problems) from None
