"""Both web servers, for real: closed by default, token checked, errors short and without traces."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from consumers.app import serving
from settings import Settings
from tests.integration.consumers_support import isolated
from tests.integration.waiting import eventually
from tests.integration.worker_kit import WorkerUnderTest, free_port
from topics import names

pytestmark = pytest.mark.integration

TOKEN = "integration-web-token-" + uuid.uuid4().hex


@dataclass
class Surface:
    """One running server: where it listens and a path that needs the token."""

    base: str
    protected: str


async def fetch(
    url: str, *, token: str | None = None, method: str = "GET", data: bytes | None = None
) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, headers=headers, data=data) as response,
    ):
        return response.status, await response.text()


async def raw(base: str, request: bytes) -> bytes:
    """Send bytes as they are (no client fixing them up) and return the whole answer."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.read(65536)
    finally:
        writer.close()


async def check_surface(surface: Surface) -> None:
    """What both servers promise, checked over real sockets."""
    url = surface.base + surface.protected
    for token in (None, "wrong", TOKEN[:-1], TOKEN + "x"):
        status, body = await fetch(url, token=token)
        assert (status, json.loads(body)) == (401, {"error": "unauthorized"}), token
    status, _ = await fetch(url, token=TOKEN)
    assert status in {200, 404}  # past the guard: the answer depends on the data
    basic = {"Authorization": f"Basic {TOKEN}"}
    async with aiohttp.ClientSession() as session, session.get(url, headers=basic) as response:
        assert response.status == 401
    status, body = await fetch(surface.base + "/health")
    assert status == 200
    assert "@" not in body
    status, body = await fetch(surface.base + "/metrics")
    assert status == 200
    assert "@" not in body
    assert TOKEN not in body
    status, body = await fetch(surface.base + "/no/such/path", token=TOKEN)
    assert (status, json.loads(body)) == (404, {"error": "not_found"})
    status, body = await fetch(url, token=TOKEN, method="POST", data=b"{}")
    assert (status, json.loads(body)) == (405, {"error": "method_not_allowed"})
    status, body = await fetch(url, token=TOKEN, method="PUT", data=b"x" * 2_000_000)
    assert status == 413 or status == 405
    answers = [
        await raw(surface.base, b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
        await raw(surface.base, b"NOT AN HTTP REQUEST\x00\xff\r\n\r\n"),
        await raw(
            surface.base, b"GET /health HTTP/1.1\r\n" + b"X: " + b"y" * 100_000 + b"\r\n\r\n"
        ),
        await raw(
            surface.base,
            b"GET " + surface.protected.encode() + b" HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 5000000\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n\r\n",
        ),
        await raw(surface.base, b"GET /customers/%ZZ%00 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ]
    for answer in answers:
        status_line = answer.split(b"\r\n", 1)[0].split()
        assert status_line[0].startswith(b"HTTP/1."), answer[:300]
        assert 400 <= int(status_line[1]) < 500, answer[:300]
        assert b"Traceback" not in answer, answer[:2000]
        assert b'File "' not in answer, answer[:2000]


@pytest.fixture(scope="module")
async def worker(
    stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WorkerUnderTest]:
    workdir: Path = tmp_path_factory.mktemp("web-worker")
    under_test = WorkerUnderTest(stack, uuid.uuid4().hex[:10], workdir, api_token=TOKEN)
    await under_test.start()
    yield under_test
    try:
        assert await under_test.stop() == 0, under_test.log()
        log = under_test.log()
        assert "Traceback" not in log, log
        assert TOKEN not in log
    finally:
        await under_test.close()


async def test_worker_surface_is_closed(worker: WorkerUnderTest, unique: str) -> None:
    cid = f"web-{unique}"
    upsert = {
        "id": f"up-{cid}",
        "type": "customer.upserted",
        "customer_id": cid,
        "occurred_at": datetime.now(UTC).isoformat(),
        "data": {"email": f"{cid}@example.com", "first_name": "Ana"},
    }
    await worker.send(names.CUSTOMERS, upsert, cid)
    url = f"{worker.url}/customers/{cid}"

    async def shown() -> bool:
        return (await fetch(url, token=TOKEN))[0] == 200

    await eventually(shown, within=60, what="customer readable with the token", detail=worker.log)
    _, body = await fetch(url, token=TOKEN)
    assert json.loads(body)["email"] == f"{cid}@example.com"
    await check_surface(Surface(worker.url, f"/customers/{cid}"))


async def test_consumers_surface_is_closed(stack: Settings, unique: str, tmp_path: Path) -> None:
    settings = isolated(stack, unique, tmp_path, api_token=SecretStr(TOKEN))
    async with serving(settings, ["rewards"]):
        base = f"http://127.0.0.1:{settings.consumers_web_port}"
        await check_surface(Surface(base, "/coupons/ANYCODE"))


def loyalty(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    launcher = Path(sys.executable).parent / "loyalty"
    return subprocess.run(
        [str(launcher), *args],
        env={**os.environ, **{f"LOYALTY_{k.upper()}": v for k, v in env.items()}},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("command", ["worker", "consumers"])
def test_refuses_to_listen_beyond_loopback_without_a_token(
    stack: Settings, unique: str, command: str
) -> None:
    done = loyalty(
        command,
        web_host="0.0.0.0",
        web_port=str(free_port()),
        consumers_web_port=str(free_port()),
        topic_namespace=f"wa{unique}.",
        mongo_database=f"wa_{unique}",
        reward_code_key="k" * 40,
        api_token="",
    )
    assert done.returncode != 0
    message = done.stderr + done.stdout
    assert "LOYALTY_WEB_HOST" in message, message
    assert "LOYALTY_API_TOKEN" in message, message
    assert "Traceback" not in message, message
