"""A `loyalty worker` process of one test module: its own namespace, database and web port."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from settings import Settings
from tests.integration.waiting import eventually
from topics.names import Topics

CODE_KEY = "integration-test-reward-code-key"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WorkerUnderTest:
    """One worker subprocess (stopped by its PID), a producer and readers of its outputs."""

    def __init__(self, settings: Settings, unique: str, workdir: Path, **env: str) -> None:
        """Prepare a worker under namespace ``wt<unique>.`` and database ``wt_<unique>``."""
        self.topics = Topics(f"wt{unique}.")
        self.port = free_port()
        self.database = f"wt_{unique}"
        self.workdir = workdir
        self.log_path = workdir / f"worker-{unique}-{self.port}.log"
        self.bootstrap = settings.kafka_bootstrap
        self.env = {
            **os.environ,
            "LOYALTY_TOPIC_NAMESPACE": self.topics.namespace,
            "LOYALTY_MONGO_DATABASE": self.database,
            "LOYALTY_WEB_PORT": str(self.port),
            "LOYALTY_REWARD_CODE_KEY": CODE_KEY,
            "LOYALTY_PROGRAM_FILE": str(Path("program.example.yaml").resolve()),
            "LOYALTY_WORKER_BATCH_WITHIN": "0.05",
            **{f"LOYALTY_{k.upper()}": v for k, v in env.items()},
        }
        self.proc: asyncio.subprocess.Process | None = None
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        self.http: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    async def start(self) -> None:
        launcher = Path(sys.executable).parent / "loyalty"
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                str(launcher),
                "worker",
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        await self.producer.start()
        self.http = aiohttp.ClientSession()
        await eventually(self._ready, within=90, what="worker /health ready", detail=self.log)

    async def _ready(self) -> bool:
        assert self.proc is not None
        assert self.proc.returncode is None, "worker exited:\n" + self.log()
        try:
            status, _ = await self.get("/health")
        except aiohttp.ClientError:
            return False
        return status == 200

    async def stop(self) -> int:
        """SIGTERM by PID and return the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(60):
                return await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            pytest.fail("worker did not stop within 60 s:\n" + self.log())

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
        await self.producer.stop()

    async def cli(self, *args: str) -> str:
        """Run a `loyalty` command with this worker's settings; return its output (exit 0)."""
        launcher = Path(sys.executable).parent / "loyalty"
        proc = await asyncio.create_subprocess_exec(
            str(launcher),
            *args,
            env={**self.env, "COLUMNS": "200"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode(errors="replace")
        return out.decode()

    async def get(self, path: str) -> tuple[int, Any]:
        assert self.http is not None
        async with self.http.get(self.url + path) as response:
            body = await response.text()
            return response.status, json.loads(body) if "json" in response.content_type else body

    async def send(self, contract_topic: str, value: dict[str, Any] | bytes, key: str) -> int:
        """Publish one message; return its offset."""
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        meta = await self.producer.send_and_wait(
            self.topics.name(contract_topic), raw, key=key.encode()
        )
        return int(meta.offset)

    async def count(self, kind: str, outcome: str) -> float:
        """This process's ``loyalty_events_total`` for one type and outcome."""
        _, text = await self.get("/metrics")
        prefix = f'loyalty_events_total{{outcome="{outcome}",type="{kind}"}} '
        return sum(
            float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)
        )

    async def applied(self, kind: str) -> float:
        """How many records of this type this process applied."""
        return await self.count(kind, "applied")

    async def customer(self, customer_id: str) -> dict[str, Any] | None:
        status, body = await self.get(f"/customers/{customer_id}")
        return body if status == 200 else None

    async def wait_customer(
        self, customer_id: str, check: Callable[[dict[str, Any]], bool], what: str
    ) -> dict[str, Any]:
        """Wait until the read interface shows the customer in a state that passes ``check``."""
        seen: dict[str, Any] = {}

        async def ok() -> bool:
            found = await self.customer(customer_id)
            seen["last"] = found
            return found is not None and check(found)

        await eventually(
            ok, within=60, what=what, detail=lambda: f"last seen: {seen.get('last')}\n{self.log()}"
        )
        return seen["last"]  # type: ignore[no-any-return]

    async def outputs(self, contract_topic: str) -> list[dict[str, Any]]:
        """Every message on one of the worker's topics so far (read from the beginning)."""
        consumer = AIOKafkaConsumer(
            self.topics.name(contract_topic),
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            found: list[dict[str, Any]] = []
            while True:
                batch = await consumer.getmany(timeout_ms=300)
                if not batch:
                    return found
                for records in batch.values():
                    found.extend(json.loads(r.value) for r in records)
        finally:
            await consumer.stop()

    async def wait_outputs(
        self, contract_topic: str, check: Callable[[list[dict[str, Any]]], bool], what: str
    ) -> list[dict[str, Any]]:
        seen: dict[str, list[dict[str, Any]]] = {"last": []}

        async def ok() -> bool:
            seen["last"] = await self.outputs(contract_topic)
            return check(seen["last"])

        await eventually(ok, within=60, what=what, detail=lambda: f"{seen['last']}\n{self.log()}")
        return seen["last"]
