"""What every rule shares: the context of one message, the step being built, refusals.

A rule is a function ``(step, message, ctx) -> Step | Rejection | Duplicate``. ``Step`` is an
immutable accumulator: each helper returns a new one with the state replaced or an output or
activity entry appended, so rules compose without mutation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from models.outputs import (
    Cause,
    NotificationKind,
    NotificationRequested,
    NotificationRequestedData,
    OutputMessage,
    derive_id,
)
from models.program import Program
from models.state import ActivityEntry, CustomerState
from models.values import Batch, DomainModel

ADJUSTMENT_TYPES = frozenset({"points.adjust", "stamps.adjust"})
IMPORT_SOURCE = "import"


class Rejection(DomainModel):
    """A valid command the rules refuse; ``reason`` says what was wrong and what to do."""

    code: str
    reason: str


def over_deduction(unit: str, delta: int, balance: int) -> Rejection | None:
    """Refuse a manual deduction of more ``unit`` than the balance holds (nothing is clamped)."""
    if delta >= 0 or -delta <= balance:
        return None
    return Rejection(
        code=f"insufficient_{unit}",
        reason=(
            f"cannot deduct {-delta} {unit}: the balance is {balance} "
            f"(delta {delta}); deduct at most {balance}"
        ),
    )


class Duplicate(DomainModel):
    """A message whose business key (order id, refund id ...) was already applied."""

    reason: str


@dataclass(frozen=True)
class Context:
    """Everything about one message the rules need besides the state, plus ``now``.

    ``code_key`` is the secret reward codes are derived from; it never leaves the rules.

    ``at`` is the business time (the message's ``occurred_at``, or the due time of a time
    event); it dates everything stored, so replaying history rebuilds the same state. ``now`` is
    only the processing time stamped on output envelopes.
    """

    program: Program
    code_key: str = field(repr=False)
    now: datetime
    at: datetime
    cause: Cause
    id_base: str
    actor: str | None = None
    batch: Batch | None = None
    is_import: bool = False
    emails_allowed: bool = True

    @property
    def entry_rewards_allowed(self) -> bool:
        """Imports never grant entry rewards."""
        return not self.is_import

    def caused_by(self, cause: Cause, at: datetime) -> Context:
        """Return the context of a time event noticed while handling this message.

        It is the system's event, not the message's: the same outputs and emails whether the
        scheduler's event or a later message (an import, an adjustment) notices it first.
        """
        return replace(
            self,
            cause=cause,
            at=at,
            id_base=cause.id,
            actor=None,
            batch=None,
            is_import=False,
            emails_allowed=True,
        )

    def envelope(self, output_id: str, customer_id: str) -> dict[str, Any]:
        """Return the envelope fields of an output with this id."""
        return {
            "id": output_id,
            "customer_id": customer_id,
            "occurred_at": self.now,
            "actor": self.actor,
            "batch": self.batch,
        }


@dataclass(frozen=True)
class Step:
    """The state so far and what it has produced (outputs to publish, activity to record)."""

    state: CustomerState
    outputs: tuple[OutputMessage, ...] = ()
    activity: tuple[ActivityEntry, ...] = ()

    def update(self, **changes: Any) -> Step:
        """Return the step with these state fields replaced."""
        return replace(self, state=self.state.model_copy(update=changes))

    def emit(self, output: OutputMessage) -> Step:
        """Return the step with one more output."""
        return replace(self, outputs=(*self.outputs, output))

    def output_id(self, ctx: Context, kind: str, *parts: str | int) -> str:
        """Return a deterministic output id, unique within this step."""
        base = derive_id(ctx.id_base, kind, *parts)
        taken = {output.id for output in self.outputs}
        candidate, n = base, 1
        while candidate in taken:
            candidate, n = f"{base}#{n}", n + 1
        return candidate

    def log(
        self,
        ctx: Context,
        kind: str,
        *,
        delta: int | None = None,
        internal_note: str | None = None,
        customer_note: str | None = None,
        **details: Any,
    ) -> Step:
        """Return the step with one activity entry; its id comes from the cause and kind."""
        base = derive_id(ctx.id_base, "activity", kind)
        taken = {entry.activity_id for entry in self.activity}
        activity_id, n = base, 1
        while activity_id in taken:
            activity_id, n = f"{base}#{n}", n + 1
        entry = ActivityEntry(
            activity_id=activity_id,
            at=ctx.at,
            kind=kind,
            delta=delta,
            internal_note=internal_note,
            customer_note=customer_note,
            cause=ctx.cause,
            details=details,
        )
        return replace(self, activity=(*self.activity, entry))

    def notify(
        self, ctx: Context, kind: NotificationKind, template_data: dict[str, Any]
    ) -> tuple[Step, bool]:
        """Request an email of this kind if allowed; return the step and whether it was sent."""
        if not may_email(self.state, ctx, kind):
            return self, False
        state = self.state
        request = NotificationRequested(
            **ctx.envelope(self.output_id(ctx, "notification", kind), state.customer_id),
            data=NotificationRequestedData(
                kind=kind,
                email=state.email,
                first_name=state.first_name,
                last_name=state.last_name,
                cause=ctx.cause,
                template_data=template_data,
            ),
        )
        return self.emit(request), True


def may_email(state: CustomerState, ctx: Context, kind: NotificationKind) -> bool:
    """Whether an email of this kind may go: program toggle, message, customer all allow it."""
    return (
        ctx.emails_allowed
        and ctx.program.emails.enabled(kind)
        and state.active
        and state.accepts_email
    )


def rank_of(program: Program, tier: str | None) -> int:
    """Rank of a tier name; -1 for no tier or a tier the program no longer defines."""
    if tier is None:
        return -1
    found = program.find_tier(tier)
    return -1 if found is None else found.rank
