"""Everything one worker process runs on, built by ``bootstrap.open_worker``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from aiohttp import web

from store.repository import CustomerRepository
from workers.batch import Pipeline
from workers.health import Health
from workers.metrics import Metrics
from workers.outbox import Publisher
from workers.scheduler import Scheduler
from workers.web import serve

log = structlog.get_logger("loyalty.worker")


@dataclass
class WorkerServices:
    """The opened clients and the parts built on them; ``close`` releases what it owns."""

    repository: CustomerRepository
    publisher: Publisher
    pipeline: Pipeline
    scheduler: Scheduler
    health: Health
    metrics: Metrics
    web_app: web.Application | None = None
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    closers: list[Callable[[], Awaitable[object]]] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Start the web server and publish whatever an earlier run left in the outboxes."""
        if self.web_app is not None:
            self._runner = await serve(self.web_app, self.web_host, self.web_port)
            log.info("web server listening", host=self.web_host, port=self.web_port)
        republished = await self.pipeline.outbox.republish_backlog()
        if republished:
            log.info("outbox backlog republished", outputs=republished)

    async def close(self) -> None:
        """Stop the web server, then close the clients (last opened, first closed)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for closer in reversed(self.closers):
            try:
                await closer()
            except Exception:
                log.warning("closing a client failed", exc_info=True)
        self.closers.clear()
