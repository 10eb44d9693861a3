"""The email notifier: ``loyalty.notifications`` in, one email per notification id out.

For each notification request, in this order:

1. A request from a batch with ``suppress_notifications`` sends nothing (imports are silent).
2. The customer's current record decides: removed, forgotten or ``accepts_email: false`` sends
   nothing, whatever the request says (the customer may have changed since it was written); the
   current address and name are used.
3. The ledger (``consumers.ledger``: one sent record per notification id) decides whether it
   was sent already: a sent record means done, nothing more.
4. The ledger records the attempt *before* the email goes out and the sent record *after* the
   server accepted it (group commit, one round trip); the Kafka offset is committed after that.
   A crash between the server's accept and the sent record sends that email again on restart:
   the one window where a duplicate is possible, logged as ``resending_unconfirmed_email``.
   Both copies carry the same ``Message-ID``, derived from the notification id, so mail
   clients and many servers fold them into one.

Failures: a permanent refusal (5xx, invalid address, no template) dead-letters that request
with its reason; a temporary one (4xx) is retried with backoff, bounded; an unreachable server
or MongoDB holds the batch (nothing dead-lettered) until it is back. Other customers' emails
in the same batch go out regardless of one bad address.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError
from pymongo.errors import PyMongoError

from consumers.ledger import NotificationLedger
from consumers.loop import (
    DONE,
    DependencyUnavailableError,
    Item,
    Outcome,
    Reject,
    Retry,
)
from consumers.metrics import ConsumerMetrics
from mail.context import Recipient, email_context, unsubscribe_link
from mail.render import MailRenderer, RenderError, TemplateMissingError
from mail.smtp import (
    Mailer,
    SmtpPermanentError,
    SmtpTransientError,
    SmtpUnavailableError,
    build_message,
)
from topics import names

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Contact:
    """What the notifier needs of a customer's current record."""

    customer_id: str
    email: str | None
    first_name: str | None
    last_name: str | None
    accepts_email: bool
    active: bool
    forgotten: bool = False


CustomerLookup = Callable[[Collection[str]], Awaitable[Mapping[str, Contact]]]
"""Return the current records of these customers (missing ids: not in the store)."""


class _Batch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    suppress_notifications: bool = False


class _RequestData(BaseModel):
    # The kind stays a string: a newer rules version may add kinds a shop has templates for.
    model_config = ConfigDict(extra="ignore")
    kind: str
    email: str
    first_name: str | None = None
    last_name: str | None = None
    template_data: dict[str, Any] = {}


class NotificationRequest(BaseModel):
    """The fields of a ``notification.requested`` message the notifier reads."""

    model_config = ConfigDict(extra="ignore")
    id: str
    customer_id: str
    occurred_at: datetime
    batch: _Batch | None = None
    data: _RequestData


class Notifier:
    """Consumer of ``loyalty.notifications`` that renders and sends the emails."""

    name = "notifier"
    topics: tuple[str, ...] = (names.NOTIFICATIONS,)
    types: frozenset[str] = frozenset({"notification.requested"})

    def __init__(
        self,
        *,
        ledger: NotificationLedger,
        customers: CustomerLookup,
        renderer: MailRenderer,
        mailer: Mailer,
        sender: str,
        program_name: str,
        currency: str,
        metrics: ConsumerMetrics,
        list_unsubscribe: str = "",
    ) -> None:
        self.ledger = ledger
        self.customers = customers
        self.renderer = renderer
        self.mailer = mailer
        self.sender = sender
        self.program_name = program_name
        self.currency = currency
        self.metrics = metrics
        self.list_unsubscribe = list_unsubscribe
        self._in_flight = asyncio.Semaphore(2 * mailer.config.connections)
        self._held: set[str] = set()
        """Ids whose send failed here because the server was unreachable (nothing went out)."""

    async def ready(self) -> bool:
        """Return whether the SMTP server and MongoDB (the ledger) answer."""
        try:
            await self.ledger.sent.database.command("ping")
        except PyMongoError:
            return False
        return await self.mailer.check()

    async def process(self, items: Sequence[Item]) -> list[Outcome]:
        """Send the email of every request that should get one; one outcome per item."""
        outcomes: list[Outcome | None] = [None] * len(items)
        requests: dict[int, NotificationRequest] = {}
        for index, item in enumerate(items):
            try:
                requests[index] = NotificationRequest.model_validate(item.envelope.body)
            except ValidationError as exc:
                outcomes[index] = Reject("invalid_message", f"not a notification request: {exc}")
        try:
            sent = await self.ledger.sent_ids(r.id for r in requests.values())
            current = await self.customers({r.customer_id for r in requests.values()})
        except PyMongoError as exc:
            raise DependencyUnavailableError(f"MongoDB: {exc}") from exc
        to_send: dict[int, tuple[NotificationRequest, Any]] = {}
        for index, request in requests.items():
            skip = self._skip_reason(request, current.get(request.customer_id), sent)
            if skip is not None:
                self.metrics.emails.labels(request.data.kind, skip).inc()
                outcomes[index] = DONE
                continue
            try:
                to_send[index] = (request, self._compose(request, current.get(request.customer_id)))
            except (TemplateMissingError, RenderError) as exc:
                outcomes[index] = Reject("template_error", str(exc))
            except SmtpPermanentError as exc:
                outcomes[index] = Reject("invalid_address", exc.reason)
        if to_send:
            retried = {requests[i].id for i in to_send if items[i].attempts > 1}
            await self._send_all(to_send, outcomes, retried)
        return [DONE if outcome is None else outcome for outcome in outcomes]

    @staticmethod
    def _skip_reason(
        request: NotificationRequest, customer: Contact | None, sent: set[str]
    ) -> str | None:
        """Return why no email goes out for this request, or None to send it."""
        if request.batch is not None and request.batch.suppress_notifications:
            return "suppressed_batch"
        if customer is not None and customer.forgotten:
            return "customer_forgotten"  # its data is erased: never fall back to the request's
        if customer is not None and not customer.active:
            return "customer_removed"
        if customer is not None and not customer.accepts_email:
            return "opted_out"
        if request.id in sent:
            return "duplicate"
        return None

    def _compose(self, request: NotificationRequest, customer: Contact | None) -> Any:
        """Render and build the email; the customer's current record wins over the request's."""
        data = request.data
        recipient = (
            Recipient(customer.customer_id, customer.email, customer.first_name, customer.last_name)
            if customer is not None and customer.email
            else Recipient(request.customer_id, data.email, data.first_name, data.last_name)
        )
        unsubscribe = unsubscribe_link(self.list_unsubscribe, request.customer_id)
        context = email_context(
            kind=data.kind,
            notification_id=request.id,
            recipient=recipient,
            template_data=data.template_data,
            program_name=self.program_name,
            currency=self.currency,
            unsubscribe_url=unsubscribe,
        )
        rendered = self.renderer.render(data.kind, context)
        return build_message(
            rendered,
            sender=self.sender,
            recipient=recipient.email,
            notification_id=request.id,
            sent_at=request.occurred_at,
            list_unsubscribe=unsubscribe,
        )

    async def _send_all(
        self,
        to_send: dict[int, tuple[NotificationRequest, Any]],
        outcomes: list[Outcome | None],
        retried: set[str],
    ) -> None:
        """Record the attempts, send concurrently over the pool, record each email sent."""
        try:
            resent = await self.ledger.start(
                [
                    {"_id": r.id, "customer_id": r.customer_id, "kind": r.data.kind}
                    for r, _ in to_send.values()
                ]
            )
        except PyMongoError as exc:
            raise DependencyUnavailableError(f"MongoDB: {exc}") from exc
        for request, _ in to_send.values():
            if request.id in resent and request.id not in retried | self._held:
                # Started before without a sent record: a crash or an outage came between.
                self.metrics.emails.labels(request.data.kind, "resent_unconfirmed").inc()
                log.warning(
                    "resending_unconfirmed_email",
                    notification_id=request.id,
                    customer_id=request.customer_id,
                )

        async def send(index: int, request: NotificationRequest, message: Any) -> None:
            # At most two emails per connection between the server's accept and the sent record
            # (one being sent, one waiting for its record): that bounds what a crash can resend
            # while the ledger write of one email overlaps the sending of the next.
            async with self._in_flight:
                await send_and_record(index, request, message)

        async def send_and_record(index: int, request: NotificationRequest, message: Any) -> None:
            try:
                await self.mailer.send(message)
            except SmtpUnavailableError as exc:
                unavailable.append(f"SMTP: {exc.reason}")
                self._held.add(request.id)
                return
            except SmtpTransientError as exc:
                outcomes[index] = Retry(f"smtp_temporary: {exc.reason}")
                return
            except SmtpPermanentError as exc:
                outcomes[index] = Reject("smtp_rejected", exc.reason)
                self.metrics.emails.labels(request.data.kind, "rejected").inc()
                return
            # Recorded at once, per email: this keeps the window in which a crash resends an
            # accepted email down to one round trip (the docs explain the window).
            try:
                await self.ledger.record_sent(
                    {
                        "_id": request.id,
                        "customer_id": request.customer_id,
                        "kind": request.data.kind,
                    }
                )
            except PyMongoError as exc:
                unavailable.append(f"MongoDB: {exc}")
                return
            outcomes[index] = DONE
            self._held.discard(request.id)
            self.metrics.emails.labels(request.data.kind, "sent").inc()
            log.info(
                "email_sent",
                notification_id=request.id,
                customer_id=request.customer_id,
                kind=request.data.kind,
            )

        unavailable: list[str] = []
        # The pool and the in-flight bound limit the concurrency to one send per connection.
        await asyncio.gather(*(send(i, req, msg) for i, (req, msg) in to_send.items()))
        if unavailable:
            # What went out is recorded; the rest of the batch waits for the server.
            raise DependencyUnavailableError(unavailable[0])
