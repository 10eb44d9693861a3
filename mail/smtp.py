"""Build and send emails with aiosmtplib: reused connections, bounded concurrency, clear errors.

Errors are sorted into three kinds the consume loop acts on differently:

* ``SmtpUnavailableError``: the server cannot be reached (connection refused, reset, timeout,
  ``421`` closing). Nothing is wrong with the message; the notifier waits and tries again.
* ``SmtpTransientError``: the server refused this message for now (a ``4xx`` reply). Retried a
  bounded number of times, then dead-lettered.
* ``SmtpPermanentError``: the server refused it for good (a ``5xx`` reply), or the address is not
  an address. Dead-lettered at once; other customers' emails keep flowing.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from email.charset import QP, Charset
from email.errors import HeaderDefect, HeaderParseError
from email.header import Header
from email.headerregistry import Address
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import format_datetime
from typing import Literal

import aiosmtplib

from mail.render import RenderedEmail

Security = Literal["none", "starttls", "tls"]
SERVICE_UNAVAILABLE = 421
_UTF8 = "utf-8"
_BODY_CHARSET = Charset(_UTF8)
# Quoted-printable keeps the bodies readable in a raw message (base64 would hide them).
_BODY_CHARSET.body_encoding = QP


class SmtpError(Exception):
    """Sending failed; ``code`` is the SMTP reply code when the server gave one."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class SmtpUnavailableError(SmtpError):
    """The SMTP server cannot be reached; the message itself is fine."""


class SmtpTransientError(SmtpError):
    """The server refused the message for now (4xx); worth retrying later."""


class SmtpPermanentError(SmtpError):
    """The server refused the message for good (5xx), or the address is invalid."""


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to connect; built from the LOYALTY_SMTP_* settings."""

    host: str
    port: int
    security: Security = "none"
    username: str = ""
    password: str = ""
    timeout: float = 10.0
    connections: int = 4
    ca_file: str | None = None


def parse_address(value: str) -> Address:
    """Return the address, or raise SmtpPermanentError saying why it is not one."""
    if "@" not in value or any(ch.isspace() or ord(ch) < 32 for ch in value):
        raise SmtpPermanentError(f"invalid address: {value!r} is not name@domain")
    try:
        address = Address(addr_spec=value)
    except (HeaderDefect, HeaderParseError, ValueError, IndexError) as exc:
        raise SmtpPermanentError(f"invalid address: {exc}") from None
    if not address.domain or "." not in address.domain.strip("."):
        raise SmtpPermanentError(f"invalid address: {value!r} has no domain with a dot")
    return address


def message_id(notification_id: str, sender: str) -> str:
    """Return the Message-ID of a notification: the same id always gives the same header."""
    digest = hashlib.sha256(notification_id.encode("utf-8")).hexdigest()[:40]
    domain = sender.rpartition("@")[2] or "localhost"
    return f"<{digest}@{domain}>"


def build_message(
    rendered: RenderedEmail,
    *,
    sender: str,
    recipient: str,
    notification_id: str,
    sent_at: datetime,
    list_unsubscribe: str = "",
) -> Message:
    """Return the email: plain text and HTML alternatives, deterministic Message-ID."""
    # Built with the compat32 MIME classes: the modern EmailMessage API parses every header
    # through its header registry, which took more CPU than sending (docs/BENCHMARKS.md).
    to = parse_address(recipient)
    message = MIMEMultipart("alternative")
    message["From"] = sender
    message["To"] = to.addr_spec
    message["Subject"] = _header_text(rendered.subject)
    message["Date"] = format_datetime(sent_at)
    message["Message-ID"] = message_id(notification_id, sender)
    message["X-Loyalty-Notification-Id"] = _header_text(notification_id)
    if list_unsubscribe:
        message["List-Unsubscribe"] = f"<{list_unsubscribe}>"
        if list_unsubscribe.startswith("https://"):
            # RFC 8058 one-click: mailbox providers unsubscribe with a POST, no page to visit.
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.attach(_text_part("plain", rendered.text))
    message.attach(_text_part("html", rendered.html))
    return message


def _header_text(value: str) -> str:
    """Return a header value on one line, RFC 2047-encoded when it is not ASCII."""
    # Control characters (CR, LF) in a header would let text from a message add headers.
    line = "".join(" " if ord(ch) < 32 or ord(ch) == 127 else ch for ch in value)
    return line if line.isascii() else Header(line, _UTF8).encode()


def _text_part(subtype: str, body: str) -> MIMENonMultipart:
    part = MIMENonMultipart("text", subtype)
    part.set_payload(body, _BODY_CHARSET)
    return part


def _classify(exc: Exception) -> SmtpError:
    """Map an aiosmtplib or socket error to the kind the notifier acts on."""
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        # Refused credentials are the service's configuration, not this message: every email
        # would fail alike, so the notifier waits (not ready) instead of dead-lettering them.
        return SmtpUnavailableError(
            f"SMTP login refused ({exc.code} {exc.message}); check LOYALTY_SMTP_USERNAME and "
            "LOYALTY_SMTP_PASSWORD",
            exc.code,
        )
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refusals = exc.recipients
        code = max((r.code for r in refusals), default=550)
        reason = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in refusals)
        return _by_code(code, f"recipient refused: {reason}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _by_code(exc.code, f"{exc.code} {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPException | OSError | TimeoutError):
        return SmtpUnavailableError(f"SMTP server unreachable: {type(exc).__name__}: {exc}")
    return SmtpUnavailableError(f"unexpected SMTP failure: {type(exc).__name__}: {exc}")


def _by_code(code: int, reason: str) -> SmtpError:
    if code == SERVICE_UNAVAILABLE or code < 400:
        return SmtpUnavailableError(reason, code)
    if code < 500:
        return SmtpTransientError(reason, code)
    return SmtpPermanentError(reason, code)


class Mailer:
    """A small pool of reused SMTP connections; at most ``connections`` sends at a time."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        for _ in range(config.connections):
            self._idle.put_nowait(self._client())

    def _client(self) -> aiosmtplib.SMTP:
        config = self.config
        return aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            username=config.username or None,
            password=config.password or None,
            timeout=config.timeout,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            cert_bundle=config.ca_file,
        )

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[aiosmtplib.SMTP]:
        client = await self._idle.get()
        try:
            if not client.is_connected:
                await client.connect()
            yield client
        except BaseException:
            # A connection in an unknown state is dropped; the next user reconnects.
            client.close()
            raise
        finally:
            self._idle.put_nowait(client)

    async def send(self, message: Message) -> None:
        """Send one message over a pooled connection; raise a classified SmtpError on failure."""
        try:
            async with self._connection() as client:
                await client.send_message(message)
        except SmtpError:
            raise
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise _classify(exc) from exc

    async def check(self) -> bool:
        """Return whether the server answers a NOOP (for readiness)."""
        try:
            async with self._connection() as client:
                await client.noop()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            return False
        return True

    async def close(self) -> None:
        """Say QUIT on every open connection."""
        clients = [self._idle.get_nowait() for _ in range(self._idle.qsize())]
        for client in clients:
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    client.close()
            self._idle.put_nowait(client)
