"""The demo plays its scenario through a real worker and reads the outcome back from MongoDB."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from decimal import Decimal
from email import policy
from pathlib import Path
from typing import Any

from demo.runner import play
from models.state import CustomerState
from program_file import load_program
from settings import Settings
from tests.integration.pipeline_harness import free_port
from tests.integration.pipeline_oracle import Oracle
from topics import names


async def test_demo_scenario_runs_through_the_worker(
    stack: Settings, unique: str, tmp_path: Path
) -> None:
    settings = stack.model_copy(
        update={
            "topic_namespace": f"demo{unique}.",
            "mongo_database": f"demo_{unique}",
            "web_port": free_port(),
            "consumers_web_port": free_port(),
            "stack_dir": stack.stack_dir.resolve(),
            "program_file": stack.program_file.resolve(),
        }
    )
    program = load_program(settings.program_file)
    result = await play(settings, program)

    views = result.views
    assert set(views) == {"alice", "bob", "carol"}
    # The rules applied to what the demo published, in order, give what the worker stored.
    oracle = Oracle(program, datetime.now(UTC), code_key=settings.code_key())
    for step in result.steps:
        for _, envelope in step.step.messages:
            oracle.apply(envelope)
    for view in views.values():
        expected = oracle.state(view["customer_id"])
        assert _shown(view) == _expected(expected)
    for name in (names.TIER_CHANGES, names.REWARDS, names.NOTIFICATIONS):
        read = {str(m["id"]) for topic, m in result.outputs if topic.endswith(name)}
        assert read == oracle.outputs.get(name, set()), name
    # The story, as the demo tells it.
    alice, bob, carol = views["alice"], views["bob"], views["carol"]
    assert alice["points_earned"] == 450  # 580 points over two orders, half of order 2 refunded
    silver = [r for r in alice["rewards"] if r["reward_id"] == "welcome-silver"]
    assert len(silver) == 1
    assert silver[0]["code"]
    assert bob["points_balance"] == 600  # the adjustment took Bob to Silver: entry reward
    assert bob["tier"] == "Silver"
    assert [r["reward_id"] for r in bob["rewards"]] == ["welcome-silver"]
    assert carol["tier"] == "Gold"  # imported: no entry rewards, no email
    assert carol["rewards"] == []
    import_step = result.steps[3]
    assert len(import_step.step.notes) == 2
    assert any("Platnum" in note for note in import_step.step.notes)
    # Every step's messages show in the activity (the demo waited for each of them).
    for step in result.steps:
        shown = {entry["cause"]["id"] for _, entry in step.activity}
        assert shown == {str(envelope["id"]) for _, envelope in step.step.messages}
    to_silver = [c for c in result.outputs_of("tier.changed") if c["data"]["to_tier"] == "Silver"]
    notified = {c["customer_id"]: c["data"]["notified"] for c in to_silver}
    assert notified == {alice["customer_id"]: True, bob["customer_id"]: False}
    requests = result.outputs_of("notification.requested")
    assert not any(r["customer_id"] == bob["customer_id"] for r in requests)
    assert result.worker_log.exists()
    # The consumers turned every request of this run into one email, read back from the sink.
    mails = [
        email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in result.mail_files
    ]
    assert len(mails) == len({r["id"] for r in requests})  # an id published twice is one email
    to_alice = [m for m in mails if m["To"] == f"alice.{result.run_id}@example.test"]
    upgrade = next(m for m in to_alice if "Silver" in m["Subject"])
    assert silver[0]["code"] in upgrade.get_body(preferencelist=("plain",)).get_content()


def _shown(view: dict[str, Any]) -> dict[str, Any]:
    """The parts of a customer view that the rules decide."""
    keys = ("points_balance", "points_earned", "stamps_balance", "tier")
    shown = {key: view[key] for key in keys}
    shown["lifetime_spend"] = Decimal(view["lifetime_spend"])
    expires = view["tier_expires_at"]
    shown["tier_expires_at"] = expires and datetime.fromisoformat(expires)
    shown["rewards"] = sorted(
        (r["grant_id"], r["reward_id"], r["code"], r["origin"], r["status"])
        for r in view["rewards"]
    )
    return shown


def _expected(state: CustomerState) -> dict[str, Any]:
    """The same parts, from the state the oracle computed."""
    return {
        "points_balance": state.points_balance,
        "points_earned": state.points_earned,
        "stamps_balance": state.stamps_balance,
        "tier": state.tier,
        "lifetime_spend": state.lifetime_spend,
        "tier_expires_at": state.tier_expires_at,
        "rewards": sorted(
            (g.grant_id, g.reward_id, getattr(g, "code", None), g.origin, g.status)
            for g in state.rewards
        ),
    }
