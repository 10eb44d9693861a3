"""The notifier over STARTTLS and implicit TLS with a login, against aiosmtpd with a test CA."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr

from consumers.app import serving
from settings import Settings
from tests.integration.consumers_support import (
    RecordingSmtp,
    counted,
    free_port,
    isolated,
    notification,
    publish,
    read_topic,
)
from tests.integration.waiting import eventually
from topics import names

USER, PASSWORD = "loyalty", "s3cret-pass"


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok)


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_login_over_tls_delivers(
    stack: Settings, unique: str, tmp_path: Path, certificate: tuple[Path, Path], security: str
) -> None:
    port = free_port()
    handler = RecordingSmtp()
    server_tls = _server_context(certificate)
    # aiosmtpd only knows about TLS it negotiated itself (STARTTLS): on an implicit-TLS socket
    # it would hide AUTH unless told the connection is fine without it.
    tls: dict[str, object] = (
        {"ssl_context": server_tls, "auth_require_tls": False}
        if security == "tls"
        else {"tls_context": server_tls, "require_starttls": True}
    )
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        auth_required=True,
        authenticator=_authenticator,
        **tls,
    )
    controller.start()
    settings = isolated(
        stack,
        unique,
        tmp_path,
        smtp_port=port,
        smtp_security=security,
        smtp_username=USER,
        smtp_password=SecretStr(PASSWORD),
        smtp_ca_file=certificate[0],
    )
    address = f"tls-{unique}@example.test"
    try:
        async with serving(settings, ["notifier"], web=False):
            await publish(
                settings, names.NOTIFICATIONS, [notification(f"c-{unique}", email_address=address)]
            )

            async def delivered() -> bool:
                return len(handler.to(address)) == 1

            await eventually(delivered, within=60, what=f"the email over {security}")
    finally:
        controller.stop()


async def test_refused_login_holds_the_emails_instead_of_dead_lettering_them(
    stack: Settings, unique: str, tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    port = free_port()
    controller = Controller(
        RecordingSmtp(),
        hostname="127.0.0.1",
        port=port,
        auth_required=True,
        authenticator=_authenticator,
        tls_context=_server_context(certificate),
        require_starttls=True,
    )
    controller.start()
    settings = isolated(
        stack,
        unique,
        tmp_path,
        smtp_port=port,
        smtp_security="starttls",
        smtp_username=USER,
        smtp_password=SecretStr("wrong"),
        smtp_ca_file=certificate[0],
    )
    try:
        async with serving(settings, ["notifier"], web=False) as running:
            await publish(
                settings,
                names.NOTIFICATIONS,
                [notification(f"c-{unique}", email_address=f"held-{unique}@example.test")],
            )

            async def held() -> bool:
                return (
                    counted(running.metrics, "loyalty_consumer_outage_retries", consumer="notifier")
                    >= 2
                )

            await eventually(held, within=90, what="the notifier to hold the batch")
            # aiosmtpd answers a failed login slowly (a read timeout here); either way it is an
            # outage of the service's configuration, not a bad message.
            assert running.loops[0].outage is not None
    finally:
        controller.stop()
    assert await read_topic(settings, names.DEAD_LETTER) == []
