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
    """The customer as the contract's read interface returns it (activity newest first).

    The state's own ``public_view`` is the base (one definition of the contract's fields); the
    profile, the grant dates and the activity are added here.
    """
    view = state.public_view()
    granted = {g.grant_id: _time(g.granted_at) for g in state.rewards}
    view.update(
        first_name=state.first_name,
        last_name=state.last_name,
        accepts_email=state.accepts_email,
        groups=list(state.groups),
        tier_expires_at=_time(state.tier_expires_at),
        rewards=[{**r, "granted_at": granted[r["grant_id"]]} for r in view["rewards"]],
        activity=[activity_view(entry) for entry in activity],
    )
    return view
