"""A `loyalty worker` process of one test module: its own namespace, database and web port."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from settings import ENV_PREFIX, Settings
from stack.worker import WorkerProcess, worker_env
from tests.integration.pipeline_harness import read_to_end
from tests.integration.waiting import eventually
from topics.names import Topics

CODE_KEY = "integration-test-reward-code-key"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WorkerUnderTest:
    """One worker process (``stack.worker``, stopped by its PID), a producer, output readers."""

    def __init__(self, settings: Settings, unique: str, workdir: Path, **env: str) -> None:
        """Prepare a worker under namespace ``wt<unique>.`` and database ``wt_<unique>``.

        ``env`` sets further settings by name (``scheduler_interval="1"``).
        """
        self.topics = Topics(f"wt{unique}.")
        self.port = free_port()
        self.database = f"wt_{unique}"
        self.workdir = workdir
        self.settings = settings.model_copy(
            update={
                "topic_namespace": self.topics.namespace,
                "mongo_database": self.database,
                "web_port": self.port,
                "reward_code_key": SecretStr(CODE_KEY),
                "program_file": Path("program.example.yaml").resolve(),
                "worker_batch_within": 0.05,
            }
        )
        extra = {f"{ENV_PREFIX}{name.upper()}": value for name, value in env.items()}
        self.process = WorkerProcess(
            self.settings,
            log_file=workdir / f"worker-{unique}-{self.port}.log",
            workdir=workdir,
            extra_env=extra,
        )
        self.env = {**os.environ, **worker_env(self.settings), **extra}
        """The environment of this worker, for `loyalty` commands run against its store."""
        self.bootstrap = settings.kafka_bootstrap
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        self.http: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return self.process.url

    def log(self) -> str:
        return self.process.tail(60)

    async def start(self) -> None:
        """Start the process and wait until its /health answers 200."""
        self.process.start()
        await self.process.wait_ready()
        await self.producer.start()
        self.http = aiohttp.ClientSession()

    async def stop(self) -> int | None:
        """SIGTERM by PID (SIGKILL after 60 s) and return the exit code."""
        await asyncio.to_thread(self.process.stop)
        return self.process.process.returncode if self.process.process else None

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

    async def outputs(
        self, contract_topic: str, *, every_copy: bool = False
    ) -> list[dict[str, Any]]:
        """Every message on one of the worker's topics so far, each id once unless told.

        Output ids are deterministic and may be published again after a crash or a rebalance
        (the outbox); the contract lets consumers deduplicate by id, and so do the tests.
        """
        found = await read_to_end(self.settings, self.topics.name(contract_topic))
        if every_copy:
            return found
        return list({message["id"]: message for message in found}.values())

    async def wait_outputs(
        self,
        contract_topic: str,
        check: Callable[[list[dict[str, Any]]], bool],
        what: str,
        *,
        every_copy: bool = False,
    ) -> list[dict[str, Any]]:
        seen: dict[str, list[dict[str, Any]]] = {"last": []}

        async def ok() -> bool:
            seen["last"] = await self.outputs(contract_topic, every_copy=every_copy)
            return check(seen["last"])

        await eventually(ok, within=60, what=what, detail=lambda: f"{seen['last']}\n{self.log()}")
        return seen["last"]
