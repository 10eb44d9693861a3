"""Measure the customer document's size as a customer's history grows (docs/storage.md).

``python -m store.sizes 1000 10000`` applies that many ``order.paid`` (every tenth refunded in
part) to one customer through the rules and the in-memory repository, batch by batch as the
worker does (load hydrated, decide, save), and prints the stored customer document's BSON size
next to the size of the state unpacked and of the same history kept whole in one document.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bson

from models.decide import applied_keys, decide
from models.messages import InputMessage
from models.program import Program
from program_file import load_program
from store.documents import unpack_state
from store.memory import DEFAULT_HOT_ORDERS, MemoryCustomerRepository
from store.repository import ActivityRecord, CustomerWrite, LoadRequest
from topics.codec import parse_message

T0 = datetime(2020, 1, 1, tzinfo=UTC)
CODE_KEY = "size-measurement-key-not-a-secret-0123456789"
BATCH = 100


@dataclass(frozen=True)
class Size:
    """Sizes after ``orders`` orders, in bytes."""

    orders: int
    document: int
    plain: int
    """The same document with the state as a BSON sub-document instead of packed."""
    hot_orders: int
    ring: int
    archived_orders: int
    archived_ids: int
    largest: tuple[int, int, int]
    """The largest stored document over the run (bytes), with its hot orders and ring ids."""
    whole: int
    lots: tuple[int, int]
    grants: tuple[int, int]
    seconds: float


def _messages(count: int) -> list[InputMessage]:
    """Return an upsert and ``count`` orders, every tenth followed by a partial refund."""
    raw: list[dict[str, object]] = [
        _envelope("join", "customer.upserted", 0, {"email": "size@example.com"})
    ]
    for n in range(count):
        order_id = f"order-{n:06d}"
        items = [{"sku": "latte", "quantity": 2, "unit_price": "4.50", "categories": ["coffee"]}]
        data = {"order_id": order_id, "total": "9.00", "currency": "EUR", "items": items}
        raw.append(_envelope(f"paid-{n}", "order.paid", n, data))
        if n % 10 == 9:
            refund = {"order_id": order_id, "refund_id": f"refund-{n}", "amount": "4.50"}
            raw.append(_envelope(f"refund-{n}", "order.refunded", n, refund))
    return [parse_message(m) for m in raw]


def _envelope(mid: str, kind: str, n: int, data: Mapping[str, object]) -> dict[str, object]:
    at = T0 + timedelta(minutes=10 * n)
    return {
        "id": f"m-{mid}",
        "type": kind,
        "customer_id": "size-1",
        "occurred_at": at.isoformat(),
        "data": data,
    }


async def measure(count: int, program: Program, hot_orders: int) -> Size:
    """Apply ``count`` orders through the repository and return the sizes."""
    repo = MemoryCustomerRepository(hot_orders=hot_orders)
    messages = _messages(count)
    now = T0 + timedelta(days=3650)
    started = time.perf_counter()
    largest = (0, 0, 0)
    for start in range(0, len(messages), BATCH):
        await _apply(repo, messages[start : start + BATCH], program, now)
        # The document between two archiving saves is larger than right after one.
        saved = repo.customers["size-1"]
        held = unpack_state(saved)
        largest = max(largest, (len(bson.encode(saved)), len(held.orders), len(held.applied_ids)))
    seconds = time.perf_counter() - started
    doc = repo.customers["size-1"]
    state = unpack_state(doc)
    plain = state.model_dump(mode="json")
    order_docs = list(repo.order_archive.values())
    whole_orders = [o["record"] for o in order_docs]
    whole_state = {
        **plain,
        "orders": [*whole_orders, *plain["orders"]],
        "applied_ids": [*(i["message_id"] for i in repo.id_archive.values()), *state.applied_ids],
    }
    return Size(
        orders=count,
        document=len(bson.encode(doc)),
        plain=len(bson.encode({**doc, "state": plain})),
        hot_orders=len(state.orders),
        ring=len(state.applied_ids),
        archived_orders=len(order_docs),
        archived_ids=len(repo.id_archive),
        whole=len(bson.encode({**doc, "state": whole_state})),
        largest=largest,
        lots=_part(plain["points_lots"]),
        grants=_part(plain["rewards"]),
        seconds=seconds,
    )


def _part(items: list[object]) -> tuple[int, int]:
    """Return how many items a state field holds and their BSON size."""
    return len(items), len(bson.encode({"x": items}))


async def _apply(
    repo: MemoryCustomerRepository, batch: Sequence[InputMessage], program: Program, now: datetime
) -> None:
    """Load, decide and save one batch, as the worker does for one customer."""
    ids = frozenset(k for m in batch for k in applied_keys(m))
    orders = frozenset(str(getattr(m.data, "order_id", "")) for m in batch) - {""}
    found = await repo.load_many([LoadRequest("size-1", message_ids=ids, order_ids=orders)])
    loaded = found.get("size-1")
    state = loaded.state if loaded else None
    activity: list[ActivityRecord] = []
    applied: list[str] = []
    for message in batch:
        decision = decide(state, message, program, now, code_key=CODE_KEY)
        if decision.duplicate or decision.state is None:
            continue
        state = decision.state
        activity.extend(ActivityRecord(entry) for entry in decision.activity)
        applied.extend(applied_keys(message))
    assert state is not None
    write = CustomerWrite(
        state=state, loaded=loaded, activity=tuple(activity), applied_ids=tuple(applied)
    )
    result = await repo.save_batch([write])
    assert result.saved == {"size-1"}, result


def main(argv: Sequence[str] | None = None) -> None:
    """Print the document sizes for each order count asked for."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("orders", nargs="*", type=int, default=[1000, 10000])
    parser.add_argument("--program", type=Path, default=Path("program.example.yaml"))
    parser.add_argument("--hot-orders", type=int, default=DEFAULT_HOT_ORDERS)
    args = parser.parse_args(argv)
    program = load_program(args.program)
    print(
        "| orders | stored document | state unpacked | hot orders | ring ids | live points lots "
        "| grants | archived orders | archived ids | whole history in one document "
        "| largest stored document on the way (hot orders, ring ids) | time |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for count in args.orders:
        s = asyncio.run(measure(count, program, args.hot_orders))
        print(
            f"| {s.orders:,} | {s.document / 1024:,.1f} KiB | {s.plain / 1024:,.1f} KiB "
            f"| {s.hot_orders} | {s.ring} "
            f"| {s.lots[0]:,} ({s.lots[1] / 1024:,.0f} KiB) "
            f"| {s.grants[0]:,} ({s.grants[1] / 1024:,.0f} KiB) "
            f"| {s.archived_orders:,} | {s.archived_ids:,} | {s.whole / 1024:,.1f} KiB "
            f"| {s.largest[0] / 1024:,.1f} KiB ({s.largest[1]}, {s.largest[2]}) "
            f"| {s.seconds:.1f} s |"
        )


if __name__ == "__main__":
    main()
