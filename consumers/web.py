"""The consumers' web server: ``/health``, ``/metrics`` and ``/coupons/<code>``.

Listens on ``LOYALTY_WEB_HOST`` (127.0.0.1 by default) and ``LOYALTY_CONSUMERS_WEB_PORT``
(6067). When ``LOYALTY_API_TOKEN`` is set, ``/coupons/…`` needs ``Authorization: Bearer
<token>``; without a token the server refuses to listen beyond loopback, since coupon answers
name customers. ``/health`` and ``/metrics`` stay open and carry no personal data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from consumers.metrics import ConsumerMetrics
from consumers.rewards import CouponRegistry, judge
from web_access import guarded_app, serve_on

ReadyCheck = Callable[[], Awaitable[dict[str, bool]]]
MAX_CODE_LENGTH = 100


def build_app(
    *,
    registry: CouponRegistry | None,
    metrics: ConsumerMetrics,
    ready: ReadyCheck,
    token: str | None,
) -> web.Application:
    """Return the aiohttp application; ``registry`` is None when the rewards issuer is off."""

    async def health(_: web.Request) -> web.Response:
        checks = await ready()
        ok = all(checks.values())
        return web.json_response(
            {"status": "ready" if ok else "unavailable", "checks": checks},
            status=200 if ok else 503,
        )

    async def prometheus(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def coupon(request: web.Request) -> web.Response:
        if registry is None:
            return web.json_response(
                {
                    "error": "unavailable",
                    "detail": "the rewards issuer is not running here; "
                    "start `loyalty consumers` with rewards",
                },
                status=503,
            )
        code = request.match_info["code"]
        if not code.strip() or len(code) > MAX_CODE_LENGTH:
            return web.json_response(
                {"error": "bad_request", "detail": f"a code has 1 to {MAX_CODE_LENGTH} characters"},
                status=400,
            )
        found = await registry.find(code)
        return web.json_response(judge(code, found, datetime.now(UTC)).as_json())

    routes = [("/health", health), ("/metrics", prometheus), ("/coupons/{code}", coupon)]
    return guarded_app(routes, token=token, protected=("/coupons/",))


class WebServer:
    """The running server; ``start`` binds the port, ``stop`` closes it."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind and serve; raises OSError naming the port setting when it is taken."""
        self.runner = await serve_on(
            self.app, self.host, self.port, port_setting="LOYALTY_CONSUMERS_WEB_PORT"
        )

    async def stop(self) -> None:
        """Stop serving."""
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
