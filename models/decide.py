"""The one entry point of the rules: ``decide(state, message, program, now, ...) -> Decision``.

Pure: no I/O, no clock reads, no Kafka or MongoDB types. ``now`` (the processing time) stamps
output envelopes and is read by one rule only: a message dated more than ``max_future_skew``
after it is refused (``occurred_at_in_future``) before anything else happens. ``code_key`` is
the secret reward codes are derived from (``LOYALTY_REWARD_CODE_KEY``), passed in like the
program so the rules stay free of settings.

Dispatch on the message type happens here, in ``_RULES``, and nowhere else. Before any rule
runs for an active customer, endings already due at the message's time are applied (points
lots expire, a temporary tier ends, a membership hold runs out, activity leaves the
qualification period and the tier is reviewed), so the state is right even when the
scheduler's time event arrives late; the scheduled event then finds nothing left to do.

The worker archives ``decision.forgotten_ids``, then persists ``decision.state`` (with a
version check: ``state.version`` was one less before the change), writes ``decision.outputs``
into the customer's outbox in the same update, stores ``decision.activity`` (ids are
deterministic, so re-inserting is a no-op), publishes the outbox and records
``decision.rejection`` when set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from models.messages import (
    AdjustPoints,
    AdjustStamps,
    ChangeTier,
    ConfirmPoints,
    CustomerForget,
    CustomerRemoved,
    CustomerUpserted,
    ExpirePoints,
    ExpireTier,
    InputMessage,
    ManageTier,
    OrderCancelled,
    OrderPaid,
    OrderRefunded,
    RedeemReward,
    RevokeReward,
    SendReminders,
)
from models.outputs import Cause, OutputMessage
from models.program import Program
from models.rules import (
    customers,
    orders,
    pending,
    points,
    reminders,
    rewards,
    stamps,
    tier_commands,
    tier_time,
)
from models.rules.base import ADJUSTMENT_TYPES, IMPORT_SOURCE, Context, Duplicate, Rejection, Step
from models.state import ActivityEntry, CustomerState
from models.values import DomainModel

Rule = Callable[[Step, Any, Context], Step | Rejection | Duplicate]

_RULES: dict[type[DomainModel], Rule] = {
    CustomerRemoved: customers.remove,
    CustomerForget: customers.forget,
    OrderPaid: orders.paid,
    OrderRefunded: orders.refunded,
    OrderCancelled: orders.cancelled,
    AdjustPoints: points.adjust,
    ExpirePoints: points.expire,
    ConfirmPoints: pending.confirm,
    SendReminders: reminders.due,
    AdjustStamps: stamps.adjust,
    RedeemReward: rewards.redeem,
    RevokeReward: rewards.revoke,
    ChangeTier: tier_commands.change,
    ManageTier: tier_commands.manage,
    ExpireTier: tier_commands.expire,
}
"""Which rule decides each message type; ``customer.upserted`` is handled before (it may create)."""

DEFAULT_MAX_FUTURE_SKEW = timedelta(hours=1)
"""How far after the processing time a message may be dated (``LOYALTY_MAX_FUTURE_SKEW``)."""


class Decision(DomainModel):
    """What one message does to one customer.

    ``state`` is the new state (``None`` only when there is no customer and none was created).
    ``duplicate`` marks a message already applied: nothing changed, nothing to publish.
    ``rejection`` is set when a valid message was refused; the refusal is still remembered in
    the state (so a redelivery is a duplicate) and logged in ``activity`` when there is a
    customer to log it on. ``forgotten_ids`` fell off the state's ring of recent ids: the store
    archives them (with the customer id) before it writes ``state``.
    """

    state: CustomerState | None
    outputs: tuple[OutputMessage, ...] = ()
    activity: tuple[ActivityEntry, ...] = ()
    rejection: Rejection | None = None
    duplicate: bool = False
    forgotten_ids: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether there is anything to persist."""
        return not self.duplicate


def applied_keys(message: InputMessage) -> tuple[str, ...]:
    """The ids that make a resend of this message a duplicate: its id and its import row key.

    The store looks these up in its id archive to fill ``CustomerState.known_ids``.
    """
    batch = message.batch
    if batch is None:
        return (message.id,)
    row_key = f"{batch.id}:{batch.row}"
    return (message.id,) if row_key == message.id else (message.id, row_key)


def context(
    message: InputMessage, program: Program, now: datetime, customer_id: str, code_key: str
) -> Context:
    """The context the rules see for this message, applied to this customer."""
    batch = message.batch
    is_import = message.source == IMPORT_SOURCE or batch is not None
    suppressed = is_import and (batch is None or batch.suppress_notifications)
    group = isinstance(message, ManageTier) and message.data.group_id is not None
    return Context(
        program=program,
        code_key=code_key,
        now=now,
        at=message.occurred_at,
        cause=Cause(type=message.type, id=message.id),
        # A group command reaches every member with one id; outputs need one id per member.
        id_base=f"{message.id}@{customer_id}" if group else message.id,
        actor=message.actor,
        batch=batch,
        is_import=is_import,
        emails_allowed=not suppressed and message.type not in ADJUSTMENT_TYPES,
    )


def decide(  # noqa: PLR0911 - the dispatch: one return per kind of outcome
    state: CustomerState | None,
    message: InputMessage,
    program: Program,
    now: datetime,
    *,
    code_key: str,
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
) -> Decision:
    """Decide what ``message`` does to the customer in ``state`` under ``program``."""
    keys = applied_keys(message)
    if state is not None and any(state.has_applied(key) for key in keys):
        return Decision(state=state, duplicate=True)
    customer_id = state.customer_id if state else message.customer_id
    ctx = context(message, program, now, customer_id, code_key)
    if (refusal := _in_future(message, now, max_future_skew)) is not None:
        # Before anything settles: a far-future date would expire every lot and tier ending.
        # The refusal is dated when it was processed, not at the date it claims.
        if state is None:
            return Decision(state=None, rejection=refusal)
        return _refuse(Step(state), replace(ctx, at=now), refusal, keys)
    if state is None:
        if isinstance(message, CustomerUpserted):
            return _finish(customers.create(message, ctx), keys)
        if isinstance(message, ManageTier) and message.data.group_id is not None:
            # The group command itself (before any fan-out): one for no group reaches nobody.
            group_refusal = tier_commands.unknown_group(program, message.data.group_id)
            if group_refusal is not None:
                return Decision(state=None, rejection=group_refusal)
        return Decision(
            state=None,
            rejection=Rejection(
                code="unknown_customer",
                reason=f"no customer {message.customer_id!r} in the program; send "
                "customer.upserted first",
            ),
        )
    step = Step(state)
    if (refusal := _status_refusal(state, message)) is not None:
        return _refuse(step, ctx, refusal, keys)
    if state.active:
        step = settle_due(step, ctx)
    if isinstance(message, CustomerUpserted):
        return _finish(customers.update(step, message, ctx), keys)
    outcome = _RULES[type(message)](step, message, ctx)
    if isinstance(outcome, Duplicate):
        return Decision(state=state, duplicate=True)
    if isinstance(outcome, Rejection):
        return _refuse(step, ctx, outcome, keys)
    return _finish(schedule(outcome, ctx, step.state), keys)


def settle_due(step: Step, ctx: Context) -> Step:
    """Apply every time event due by the message's time, each at its own time, oldest kind
    first: pending points are confirmed, reminders whose subject is still ahead are requested,
    lots expire, tiers end or are reviewed; then the next reminder is scheduled."""
    step = pending.confirm_due(step, ctx, ctx.at)
    step = reminders.send_due(step, ctx, ctx.at)
    step = points.expire_due_lots(step, ctx, ctx.at)
    step = tier_time.settle_time(step, ctx, ctx.at)
    return reminders.schedule(step, ctx)


def schedule(step: Step, ctx: Context, before: CustomerState) -> Step:
    """Record the customer's next due times after a rule ran (tier review, reminders)."""
    return reminders.schedule(tier_time.schedule_review(step, ctx, before), ctx)


def _in_future(message: InputMessage, now: datetime, skew: timedelta) -> Rejection | None:
    """Refuse a message dated further after the processing time than the allowed skew."""
    if message.occurred_at <= now + skew:
        return None
    return Rejection(
        code="occurred_at_in_future",
        reason=f"occurred_at {message.occurred_at.isoformat()} is more than {skew} after the "
        f"processing time {now.isoformat()}; fix the sender's clock or the date and resend "
        "with a new message id (the allowed skew is LOYALTY_MAX_FUTURE_SKEW)",
    )


def _status_refusal(state: CustomerState, message: InputMessage) -> Rejection | None:
    """Refuse what a forgotten or removed customer no longer takes.

    ``customer.forget`` always passes (a removed customer may ask to be forgotten; forgetting
    twice changes nothing); a removed customer's profile may still be updated, a forgotten
    one's may not (that would bring the erased data back).
    """
    if isinstance(message, CustomerForget):
        return None
    if state.status == "forgotten":
        when = f" on {state.forgotten_at.date().isoformat()}" if state.forgotten_at else ""
        return Rejection(
            code="customer_forgotten",
            reason=f"customer {state.customer_id!r} asked to be forgotten{when}; {message.type} "
            "is not applied (their personal data was erased; do not resend)",
        )
    if state.status == "removed" and not isinstance(message, CustomerUpserted):
        removed = f" on {state.removed_at.date().isoformat()}" if state.removed_at else ""
        return Rejection(
            code="customer_removed",
            reason=f"customer {state.customer_id!r} was removed from the program{removed}; "
            f"{message.type} is not applied (a removed customer keeps their history but "
            "takes no further messages; do not resend)",
        )
    return None


def _finish(step: Step, keys: tuple[str, ...]) -> Decision:
    state, forgotten = step.state.remember(*keys)
    return Decision(
        state=state, outputs=step.outputs, activity=step.activity, forgotten_ids=forgotten
    )


def _refuse(step: Step, ctx: Context, refusal: Rejection, keys: tuple[str, ...]) -> Decision:
    step = step.log(ctx, "rejected", code=refusal.code, reason=refusal.reason)
    state, forgotten = step.state.remember(*keys)
    return Decision(
        state=state,
        outputs=step.outputs,
        activity=step.activity,
        rejection=refusal,
        forgotten_ids=forgotten,
    )
