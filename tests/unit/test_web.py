"""The worker's web server on the in-memory store: read view, token, health, metrics."""

from __future__ import annotations

import pytest
import typer
from aiohttp.test_utils import TestClient, TestServer

from cli.worker import parse_only
from tests.unit.pipeline_kit import Kit
from tests.unit.test_pipeline import paid, upsert
from topics import names
from web_access import ExposureError, check_exposure
from workers.web import build_web


async def ok() -> None:
    return None


async def down() -> None:
    raise ConnectionError("no server")


async def client_for(kit: Kit, token: str | None = None, store_up: bool = True) -> TestClient:
    probes = {"kafka": ok, "store": ok if store_up else down}
    app = build_web(kit.repository, kit.health, kit.metrics, probes=probes, token=token)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def kit() -> Kit:
    kit = Kit()
    await kit.handle(kit.record(names.CUSTOMERS, upsert()))
    await kit.handle(kit.record(names.ORDERS, paid("o-1", "600.00", id="e-1")))
    return kit


async def test_customer_view_follows_the_contract(kit: Kit) -> None:
    client = await client_for(kit)
    try:
        response = await client.get("/customers/c-1")
        assert response.status == 200
        view = await response.json()
        for field in ("customer_id", "email", "first_name", "last_name", "accepts_email",
                      "status", "points_balance", "stamps_balance", "tier", "tier_expires_at",
                      "lifetime_spend", "rewards", "activity"):  # fmt: skip
            assert field in view
        assert (view["tier"], view["points_balance"], view["status"]) == ("Silver", 600, "active")
        [reward] = view["rewards"]
        assert set(reward) >= {"grant_id", "reward_id", "code", "origin", "status"}
        times = [entry["at"] for entry in view["activity"]]
        assert times == sorted(times, reverse=True)
        missing = await client.get("/customers/nobody")
        assert missing.status == 404
    finally:
        await client.close()


async def test_token_is_required_when_set(kit: Kit) -> None:
    client = await client_for(kit, token="s3cret")
    try:
        assert (await client.get("/customers/c-1")).status == 401
        bearer = {"Authorization": "Bearer s3cret"}
        assert (await client.get("/customers/c-1", headers=bearer)).status == 200
        assert (await client.get("/health")).status == 200  # open, no personal data
    finally:
        await client.close()


async def test_health_is_not_ready_while_a_dependency_is_down(kit: Kit) -> None:
    client = await client_for(kit, store_up=False)
    try:
        response = await client.get("/health")
        assert response.status == 503
        assert await response.json() == {"ready": False, "kafka": True, "store": False}
    finally:
        await client.close()


async def test_metrics_count_events_by_type_and_outcome(kit: Kit) -> None:
    client = await client_for(kit)
    try:
        text = await (await client.get("/metrics")).text()
        assert 'loyalty_events_total{outcome="applied",type="order.paid"} 1.0' in text
        assert "loyalty_batch_seconds_bucket" in text
        assert "example.com" not in text
    finally:
        await client.close()


def test_listening_beyond_loopback_needs_a_token() -> None:
    check_exposure("127.0.0.1", None)
    check_exposure("0.0.0.0", "token")
    with pytest.raises(ExposureError, match="LOYALTY_API_TOKEN"):
        check_exposure("0.0.0.0", None)


def test_only_names_known_agents() -> None:
    assert parse_only("orders, customers") == ("orders", "customers")
    assert parse_only(None) == ("customers", "orders", "adjustments", "tier-commands")
    with pytest.raises(typer.BadParameter, match="choose from"):
        parse_only("orders,payments")
