"""Customers: joining and updating the program, and leaving it.

- The email is kept as sent and, for comparisons, normalised (trimmed, case-folded);
  uniqueness across customers is the store's job.
- A removed customer keeps their history and stops earning and receiving email; every message
  for them but ``customer.upserted`` is refused. An upsert of a removed customer updates the
  profile and leaves them removed: removal is an admin decision a routine profile sync from the
  storefront must not undo.
- A forgotten customer (``customer.forget``) has no email or names any more; the balances, tier,
  grants and the ledger of amounts stay so the shop's accounts still add up. Forgetting again
  changes nothing; every other message for them is refused (``customer_forgotten``), an upsert
  too, so that a profile sync cannot bring the erased data back. The store erases what the
  state does not hold (activity notes, parked messages, the email lookup; docs/deployment.md).
"""

from __future__ import annotations

from dataclasses import replace

from models.messages import CustomerForget, CustomerRemoved, CustomerUpserted
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


def forget(step: Step, _: CustomerForget, ctx: Context) -> Step:
    """Erase email and names; idempotent. The reason is not stored: it may name the person."""
    if step.state.status == "forgotten":
        return step
    step = step.update(
        email="",
        email_normalized="",
        first_name=None,
        last_name=None,
        accepts_email=False,
        status="forgotten",
        forgotten_at=ctx.at,
    )
    return step.log(ctx, "customer_forgotten")
