"""The notifier's ledger: which notifications are being sent and which were sent, in MongoDB.

Two insert-only collections, one document per notification id in each:

* ``notification_attempts``: written *before* an email goes out (one ``insert_many`` per
  batch). Finding one without a matching ``notifications`` record means a send was started and
  its outcome is unknown (a crash, an outage); the email is sent again and the log says so.
* ``notifications``: written right *after* the server accepted the email. Present means sent:
  the notifier never sends that id again.

Inserts only, never updates: inserts are the cheapest write on every MongoDB-compatible server
(the local one does 5-7k/s in ``insert_many`` against ~0.9k/s single updates), and a repeated
insert is refused by ``_id``, which is exactly the idempotence wanted. Sent records are written
by group commit: every send that finishes while a write is in flight joins the next
``insert_many``, so the window between the server's accept and the record is one round trip
whatever the load, and the number of round trips shrinks as the rate grows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

SENT_COLLECTION = "notifications"
ATTEMPTS_COLLECTION = "notification_attempts"
DUPLICATE_KEY = 11000

Document = dict[str, Any]


async def insert_new(collection: AsyncCollection[Document], documents: list[Document]) -> set[str]:
    """Insert the documents; return the ``_id``s that existed already (those are left as is)."""
    if not documents:
        return set()
    try:
        await collection.insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", ())
        others = [e for e in errors if e.get("code") != DUPLICATE_KEY]
        if others or exc.details.get("writeConcernErrors"):
            raise
        return {str(documents[e["index"]]["_id"]) for e in errors}
    return set()


class NotificationLedger:
    """What was started and what was sent, by notification id."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.sent = database[SENT_COLLECTION]
        self.attempts = database[ATTEMPTS_COLLECTION]
        self._queue: list[tuple[Document, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def sent_ids(self, ids: Iterable[str]) -> set[str]:
        """Return which of these notification ids were sent."""
        wanted = list(ids)
        if not wanted:
            return set()
        cursor = self.sent.find({"_id": {"$in": wanted}}, {"_id": 1})
        return {str(doc["_id"]) async for doc in cursor}

    async def start(self, attempts: list[Document]) -> set[str]:
        """Record that these sends start (``_id``: notification id); return those started before."""
        now = datetime.now(UTC)
        return await insert_new(self.attempts, [{**doc, "started_at": now} for doc in attempts])

    async def record_sent(self, document: Document) -> None:
        """Record one email as sent; return once the record is durable (group commit)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(({**document, "sent_at": datetime.now(UTC)}, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        while self._queue:
            group, self._queue = self._queue, []
            try:
                await insert_new(self.sent, [document for document, _ in group])
            except Exception as exc:  # noqa: BLE001 - handed to every waiter, none is lost
                for _, done in group:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in group:
                    if not done.done():
                        done.set_result(None)
