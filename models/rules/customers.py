"""Customers: joining and updating the program, and leaving it.

- The email is kept as sent and, for comparisons, normalised (trimmed, case-folded);
  uniqueness across customers is the store's job.
- A removed customer keeps their history and stops earning and receiving email; every message
  for them but ``customer.upserted`` is refused. An upsert of a removed customer updates the
  profile and leaves them removed: removal is an admin decision a routine profile sync from the
  storefront must not undo.
"""

from __future__ import annotations

from dataclasses import replace

from models.messages import CustomerRemoved, CustomerUpserted
from models.rules import tiers
from models.rules.base import Context, Rejection, Step
from models.state import CustomerState


def create(message: CustomerUpserted, ctx: Context) -> Step:
    """A new customer joins: profile stored, base tier (if the program has one) evaluated."""
    data = message.data
    state = CustomerState(
        customer_id=message.customer_id,
        email=data.email,
        email_normalized=data.email_key,
        first_name=data.first_name,
        last_name=data.last_name,
        accepts_email=data.accepts_email,
        groups=data.groups or (),
        joined_at=ctx.at,
    )
    step = Step(state).log(ctx, "customer_joined", customer_note="Joined the program")
    # Joining puts the customer in the base tier: published, but not worth an email.
    return tiers.evaluate(step, replace(ctx, emails_allowed=False))


def update(step: Step, message: CustomerUpserted, ctx: Context) -> Step:
    """Update the profile; a removed customer stays removed."""
    data = message.data
    state = step.state
    changes: dict[str, object] = {
        "email": data.email,
        "email_normalized": data.email_key,
        "first_name": data.first_name,
        "last_name": data.last_name,
        "accepts_email": data.accepts_email,
    }
    if data.groups is not None:
        changes["groups"] = data.groups
    changed = sorted(key for key, value in changes.items() if getattr(state, key) != value)
    if not changed:
        return step
    step = step.update(**changes)
    return step.log(ctx, "customer_updated", fields=changed, status=state.status)


def remove(step: Step, message: CustomerRemoved, ctx: Context) -> Step | Rejection:
    """Take the customer out of the program; history, balances and grants are kept."""
    step = step.update(status="removed", removed_at=ctx.at)
    return step.log(ctx, "customer_removed", internal_note=message.data.reason)
