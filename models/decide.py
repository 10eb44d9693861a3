"""The one entry point of the rules: ``decide(state, message, program, now) -> Decision``.

Pure: no I/O, no clock reads (``now`` is a parameter and only stamps output envelopes), no
Kafka or MongoDB types. Dispatch on the message type happens here, in ``_RULES``, and nowhere
else. Before any rule runs for an active customer, endings already due at the message's time
are applied (points lots expire, a temporary tier ends, a membership hold runs out, activity
leaves the qualification period and the tier is reviewed), so the state is right even when
the scheduler's time event arrives late; the scheduled event then finds nothing left to do.

The worker persists ``decision.state`` (with a version check: ``state.version`` was one less
before the change), writes ``decision.outputs`` into the customer's outbox in the same update,
stores ``decision.activity`` (ids are deterministic, so re-inserting is a no-op), publishes the
outbox and records ``decision.rejection`` when set.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from models.messages import (
    AdjustPoints,
    AdjustStamps,
    ChangeTier,
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
)
from models.outputs import Cause, OutputMessage
from models.program import Program
from models.rules import customers, orders, points, rewards, stamps, tier_commands, tier_time
from models.rules.base import ADJUSTMENT_TYPES, IMPORT_SOURCE, Context, Duplicate, Rejection, Step
from models.state import ActivityEntry, CustomerState
from models.values import DomainModel

Rule = Callable[[Step, Any, Context], Step | Rejection | Duplicate]

_RULES: dict[type[DomainModel], Rule] = {
    CustomerRemoved: customers.remove,
    OrderPaid: orders.paid,
    OrderRefunded: orders.refunded,
    OrderCancelled: orders.cancelled,
    AdjustPoints: points.adjust,
    ExpirePoints: points.expire,
    AdjustStamps: stamps.adjust,
    RedeemReward: rewards.redeem,
    RevokeReward: rewards.revoke,
    ChangeTier: tier_commands.change,
    ManageTier: tier_commands.manage,
    ExpireTier: tier_commands.expire,
}
"""Which rule decides each message type; ``customer.upserted`` is handled before (it may create)."""


class Decision(DomainModel):
    """What one message does to one customer.

    ``state`` is the new state (``None`` only when there is no customer and none was created).
    ``duplicate`` marks a message already applied: nothing changed, nothing to publish.
    ``rejection`` is set when a valid message was refused; the refusal is still remembered in
    the state (so a redelivery is a duplicate) and logged in ``activity`` when there is a
    customer to log it on.
    """

    state: CustomerState | None
    outputs: tuple[OutputMessage, ...] = ()
    activity: tuple[ActivityEntry, ...] = ()
    rejection: Rejection | None = None
    duplicate: bool = False

    @property
    def changed(self) -> bool:
        """Whether there is anything to persist."""
        return not self.duplicate


def context(message: InputMessage, program: Program, now: datetime, customer_id: str) -> Context:
    """The context the rules see for this message, applied to this customer."""
    batch = message.batch
    is_import = message.source == IMPORT_SOURCE or batch is not None
    suppressed = is_import and (batch is None or batch.suppress_notifications)
    group = isinstance(message, ManageTier) and message.data.group_id is not None
    return Context(
        program=program,
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
    state: CustomerState | None, message: InputMessage, program: Program, now: datetime
) -> Decision:
    """Decide what ``message`` does to the customer in ``state`` under ``program``."""
    if state is not None and state.has_applied(message.id):
        return Decision(state=state, duplicate=True)
    ctx = context(message, program, now, state.customer_id if state else message.customer_id)
    if state is None:
        if isinstance(message, CustomerUpserted):
            return _finish(customers.create(message, ctx), message.id)
        return Decision(
            state=None,
            rejection=Rejection(
                code="unknown_customer",
                reason=f"no customer {message.customer_id!r} in the program; send "
                "customer.upserted first",
            ),
        )
    step = Step(state)
    if state.active:
        step = points.expire_due_lots(step, ctx, ctx.at)
        step = tier_time.settle_time(step, ctx, ctx.at)
    if isinstance(message, CustomerUpserted):
        return _finish(customers.update(step, message, ctx), message.id)
    if not state.active:
        removed = f" on {state.removed_at.date().isoformat()}" if state.removed_at else ""
        refusal = Rejection(
            code="customer_removed",
            reason=f"customer {state.customer_id!r} was removed from the program{removed}; "
            f"{message.type} is not applied (a removed customer keeps their history but "
            "takes no further messages; do not resend)",
        )
        return _refuse(step, ctx, refusal, message.id)
    outcome = _RULES[type(message)](step, message, ctx)
    if isinstance(outcome, Duplicate):
        return Decision(state=state, duplicate=True)
    if isinstance(outcome, Rejection):
        return _refuse(step, ctx, outcome, message.id)
    return _finish(tier_time.schedule_review(outcome, ctx), message.id)


def _finish(step: Step, message_id: str) -> Decision:
    return Decision(
        state=step.state.remember(message_id), outputs=step.outputs, activity=step.activity
    )


def _refuse(step: Step, ctx: Context, refusal: Rejection, message_id: str) -> Decision:
    step = step.log(ctx, "rejected", code=refusal.code, reason=refusal.reason)
    return Decision(
        state=step.state.remember(message_id),
        outputs=step.outputs,
        activity=step.activity,
        rejection=refusal,
    )
