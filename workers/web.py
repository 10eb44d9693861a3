"""The worker's web server: ``GET /customers/<id>``, ``GET /health``, ``GET /metrics``.

A small aiohttp server (faust's own web server stays off: it would add views we do not want
open). Listens on ``LOYALTY_WEB_HOST`` (127.0.0.1 by default); with ``LOYALTY_API_TOKEN`` set,
``/customers/…`` requires ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from store.repository import CustomerRepository
from web_access import guarded_app, serve_on
from workers.health import Health
from workers.metrics import Metrics
from workers.views import customer_view

ACTIVITY_LIMIT = 100
PROBE_TIMEOUT_S = 2.0

Probe = Callable[[], Awaitable[object]]


def build_web(
    repository: CustomerRepository,
    health: Health,
    metrics: Metrics,
    *,
    probes: dict[str, Probe],
    token: str | None = None,
) -> web.Application:
    """Return the aiohttp application of the worker's read interface."""

    async def customer(request: web.Request) -> web.Response:
        customer_id = request.match_info["customer_id"]
        stored = await repository.get(customer_id)
        if stored is None:
            return web.json_response(
                {"error": "not_found", "message": f"no customer {customer_id!r}"}, status=404
            )
        page = await repository.activity(customer_id, limit=ACTIVITY_LIMIT)
        return web.json_response(customer_view(stored.state, list(page.entries)))

    async def health_view(_: web.Request) -> web.Response:
        results = await asyncio.gather(*(_probe(p) for p in probes.values()))
        for name, ok in zip(probes, results, strict=True):
            health.mark(name, ok)  # type: ignore[arg-type]  # probe names are dependencies
        body = {"ready": health.ready, **health.up}
        return web.json_response(body, status=200 if health.ready else 503)

    async def metrics_view(_: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    routes = [
        ("/customers/{customer_id}", customer),
        ("/health", health_view),
        ("/metrics", metrics_view),
    ]
    return guarded_app(routes, token=token, protected=("/customers/",))


async def _probe(probe: Probe) -> bool:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            await probe()
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False
    return True


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving ``app``; stop it with ``await runner.cleanup()``."""
    return await serve_on(app, host, port, port_setting="LOYALTY_WEB_PORT")
