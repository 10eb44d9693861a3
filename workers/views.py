"""The contract's read interface: one JSON object per customer (``GET /customers/<id>``)."""

from __future__ import annotations

from typing import Any

from models.state import ActivityEntry, CustomerState


def _time(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def activity_view(entry: ActivityEntry) -> dict[str, Any]:
    """One activity line as the contract shows it."""
    view: dict[str, Any] = {
        "at": _time(entry.at),
        "kind": entry.kind,
        "cause": {"type": entry.cause.type, "id": entry.cause.id},
    }
    for name in ("delta", "internal_note", "customer_note"):
        value = getattr(entry, name)
        if value is not None:
            view[name] = value
    if entry.details:
        view["details"] = entry.details
    return view


def customer_view(state: CustomerState, activity: list[ActivityEntry]) -> dict[str, Any]:
    """The customer as the contract's read interface returns it (activity newest first)."""
    view: dict[str, Any] = {
        "customer_id": state.customer_id,
        "email": state.email,
        "first_name": state.first_name,
        "last_name": state.last_name,
        "accepts_email": state.accepts_email,
        "status": getattr(state, "status", "active"),
        "points_balance": state.points_balance,
        "points_earned": state.points_earned,
        "stamps_balance": state.stamps_balance,
        "tier": state.tier,
        "tier_expires_at": _time(state.tier_expires_at),
        "lifetime_spend": str(state.lifetime_spend),
        "groups": list(state.groups),
        "rewards": [
            {
                "grant_id": g.grant_id,
                "reward_id": g.reward_id,
                "code": getattr(g, "code", None),
                "origin": g.origin,
                "status": g.status,
                "granted_at": _time(g.granted_at),
            }
            for g in state.rewards
        ],
        "activity": [activity_view(entry) for entry in activity],
    }
    pending = getattr(state, "points_pending", None)
    if pending is not None:
        view["points_pending"] = pending
    return view
