"""Closed-by-default access to the service's web servers (the worker's and the consumers').

Both servers are built through :func:`guarded_app` and started with :func:`serve`, so they share
one policy: listen on loopback unless ``LOYALTY_WEB_HOST`` says otherwise, refuse to listen
beyond loopback without ``LOYALTY_API_TOKEN``, require ``Authorization: Bearer <token>`` on the
routes that name customers, and answer every error (401, 404, 405, 413, bad request, a failing
handler) with a short JSON body, never a stack trace.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable

import structlog
from aiohttp import web

log = structlog.get_logger("loyalty.web")

MAX_BODY_BYTES = 16 * 1024
"""No route takes a body; a request carrying more than this is refused with 413."""
MAX_LINE_BYTES = 4096
"""Longest request line (method, path, query) the server reads; longer gets 400/414."""
MAX_HEADER_BYTES = 8190
MAX_HEADERS = 64

# Malformed requests (scanners, TLS spoken to a plain port) are the client's fault: one line in
# the log, not a stack trace per probe.
protocol_log = logging.getLogger("loyalty.web.protocol")


class _OneLine(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {type(error).__name__}: {error}"[:500]
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


protocol_log.addFilter(_OneLine())

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ExposureError(Exception):
    """The server would listen beyond this machine without an API token."""


def is_loopback(host: str) -> bool:
    """Return whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without an API token."""
    if not token and not is_loopback(host):
        raise ExposureError(
            f"LOYALTY_WEB_HOST={host} would expose customer data beyond this machine, but "
            "LOYALTY_API_TOKEN is not set; set LOYALTY_API_TOKEN to a long random secret "
            "(clients then send 'Authorization: Bearer <token>'), or leave LOYALTY_WEB_HOST "
            "at 127.0.0.1"
        )


def bearer_matches(header: str, token: str) -> bool:
    """Return whether an ``Authorization`` header carries ``token``, compared in constant time."""
    scheme, _, given = header.partition(" ")
    # compare_digest on bytes: equal-length work whatever the first differing byte is.
    matches = hmac.compare_digest(given.strip().encode(), token.encode())
    return scheme.lower() == "bearer" and matches


def _error(status: int, error: str) -> web.Response:
    return web.json_response({"error": error}, status=status)


_REASONS = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    414: "request_too_large",
    431: "request_too_large",
}


def _guard(
    token: str | None, protected: tuple[str, ...]
) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("Authorization", "")
        if token and request.path.startswith(protected) and not bearer_matches(given, token):
            response = _error(401, "unauthorized")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        if request.content_length and request.content_length > MAX_BODY_BYTES:
            return _error(413, "request_too_large")
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _error(exc.status, _REASONS.get(exc.status, "error"))
        except Exception:
            # The client learns only that it failed; the trace goes to the log, not the wire.
            log.exception("web request failed", path=request.path)
            return _error(500, "internal_error")

    return guard


def guarded_app(
    routes: Iterable[tuple[str, Handler]], *, token: str | None, protected: Iterable[str]
) -> web.Application:
    """Return an aiohttp app serving GET ``routes``; ``protected`` path prefixes need the token."""
    app = web.Application(
        middlewares=[_guard(token or None, tuple(protected))],
        client_max_size=MAX_BODY_BYTES,
        handler_args={
            "max_line_size": MAX_LINE_BYTES,
            "max_field_size": MAX_HEADER_BYTES,
            "max_headers": MAX_HEADERS,
        },
    )
    for path, handler in routes:
        app.router.add_get(path, handler)
    return app


async def serve_on(
    app: web.Application, host: str, port: int, *, port_setting: str
) -> web.AppRunner:
    """Start serving ``app``; stop it with ``await runner.cleanup()``."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, logger=protocol_log)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(
            f"cannot listen on {host}:{port} ({exc.strerror}); set {port_setting} to a free "
            "port or LOYALTY_WEB_HOST to an address of this machine"
        ) from exc
    return runner
