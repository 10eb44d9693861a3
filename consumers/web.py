"""The consumers' web server: ``/health``, ``/metrics`` and ``/coupons/<code>``.

Listens on ``LOYALTY_WEB_HOST`` (127.0.0.1 by default) and ``LOYALTY_CONSUMERS_WEB_PORT``
(6067). When ``LOYALTY_API_TOKEN`` is set, ``/coupons/…`` needs ``Authorization: Bearer
<token>``; without a token the server refuses to listen beyond loopback, since coupon answers
name customers. ``/health`` and ``/metrics`` stay open and carry no personal data.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from consumers.metrics import ConsumerMetrics
from consumers.rewards import CouponRegistry, judge

ReadyCheck = Callable[[], Awaitable[dict[str, bool]]]
MAX_CODE_LENGTH = 100


class ExposureError(Exception):
    """The server would listen beyond loopback without an API token."""


def is_loopback(host: str) -> bool:
    """Return whether the host only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to serve coupon answers beyond loopback without a token."""
    if not token and not is_loopback(host):
        raise ExposureError(
            f"LOYALTY_WEB_HOST={host} listens beyond this machine but LOYALTY_API_TOKEN is not "
            "set; set a token (clients send `Authorization: Bearer <token>`) or listen on "
            "127.0.0.1"
        )


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
        if token and not _authorized(request, token):
            return web.json_response(
                {"error": "unauthorized", "detail": "send Authorization: Bearer <token>"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
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

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", prometheus)
    app.router.add_get("/coupons/{code}", coupon)
    return app


def _authorized(request: web.Request, token: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    # Constant-time comparison: the token must not leak through response timing.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


class WebServer:
    """The running server; ``start`` binds the port, ``stop`` closes it."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.runner = web.AppRunner(app, access_log=None)
        self.host = host
        self.port = port

    async def start(self) -> None:
        """Bind and serve; raises OSError naming the port when it is taken."""
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await self.runner.cleanup()
            raise OSError(
                f"cannot listen on {self.host}:{self.port} ({exc.strerror}); set "
                "LOYALTY_CONSUMERS_WEB_PORT to a free port"
            ) from exc

    async def stop(self) -> None:
        """Stop serving."""
        await self.runner.cleanup()
