"""Check a MongoDB-compatible server for what this service relies on, and measure its speed.

Run against any server, local stand-in or real MongoDB::

    .venv/bin/python -m stack.mongo_bench --uri 'mongodb://127.0.0.1:27018/?retryWrites=false'

Everything happens in a fresh database ``bench_<random>`` that is dropped at the end. Every
phase is bounded in operations and in seconds, so a slow server cannot hang the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

Doc = dict[str, Any]
Check = Callable[[AsyncDatabase[Doc]], Awaitable[str]]

CHECK_TIMEOUT = 30.0


class CheckFailedError(AssertionError):
    """The server answered, but not as MongoDB would."""


def expect(condition: bool, message: str) -> None:
    """Fail the current check with message unless condition holds."""
    if not condition:
        raise CheckFailedError(message)


@dataclass
class CheckResult:
    """One fidelity check: passed or not, with what was seen."""

    name: str
    ok: bool
    detail: str


@dataclass
class Throughput:
    """One throughput phase: operations done, seconds taken, operations per second."""

    name: str
    ops: int
    seconds: float
    per_second: float
    note: str = ""


@dataclass
class Report:
    """Everything one run measured."""

    uri: str
    label: str
    server_version: str = ""
    checks: list[CheckResult] = field(default_factory=list)
    throughput: list[Throughput] = field(default_factory=list)
    rss_mib: float | None = None


# ---------------------------------------------------------------- fidelity checks


async def check_conditional_update(db: AsyncDatabase[Doc]) -> str:
    """Optimistic concurrency: $inc/$set/$push guarded by a version in the filter."""
    coll = db["occ"]
    await coll.insert_one({"_id": "c1", "version": 1, "points": 0, "outbox": []})
    update = {
        "$inc": {"points": 10, "version": 1},
        "$set": {"tier": "silver"},
        "$push": {"outbox": {"id": "o1", "sent": False}},
    }
    stale = await coll.update_one({"_id": "c1", "version": 0}, update)
    expect(stale.matched_count == 0, f"stale version matched {stale.matched_count}")
    fresh = await coll.update_one({"_id": "c1", "version": 1}, update)
    expect(fresh.matched_count == 1 and fresh.modified_count == 1, "current version not applied")
    doc = await coll.find_one({"_id": "c1"})
    expect(doc is not None, "document vanished")
    assert doc is not None
    expect(doc["points"] == 10 and doc["version"] == 2, f"wrong counters {doc}")
    expect(doc["tier"] == "silver" and doc["outbox"] == [{"id": "o1", "sent": False}], str(doc))
    return "stale=0 matched, current=1 matched, $inc/$set/$push applied"


async def check_occ_race(db: AsyncDatabase[Doc]) -> str:
    """Eight tasks doing read-modify-write with a version check never lose an increment."""
    coll = db["race"]
    await coll.insert_one({"_id": "r", "version": 0, "n": 0})
    tasks, per_task = 8, 20
    conflicts = 0

    async def worker() -> None:
        nonlocal conflicts
        for _ in range(per_task):
            while True:
                doc = await coll.find_one({"_id": "r"})
                assert doc is not None
                res = await coll.update_one(
                    {"_id": "r", "version": doc["version"]},
                    {"$set": {"n": doc["n"] + 1}, "$inc": {"version": 1}},
                )
                if res.modified_count == 1:
                    break
                conflicts += 1

    await asyncio.gather(*(worker() for _ in range(tasks)))
    doc = await coll.find_one({"_id": "r"})
    assert doc is not None
    expect(doc["n"] == tasks * per_task, f"lost updates: n={doc['n']}, want {tasks * per_task}")
    return f"n={doc['n']} after {conflicts} version conflicts"


async def check_upsert(db: AsyncDatabase[Doc]) -> str:
    """update_one(upsert=True) inserts once with $setOnInsert, then updates."""
    coll = db["upsert"]
    update = {"$inc": {"points": 5}, "$setOnInsert": {"created": "now"}}
    first = await coll.update_one({"_id": "u1"}, update, upsert=True)
    expect(first.upserted_id == "u1", f"upserted_id={first.upserted_id!r}")
    second = await coll.update_one({"_id": "u1"}, update, upsert=True)
    expect(second.upserted_id is None and second.matched_count == 1, "second upsert inserted")
    doc = await coll.find_one({"_id": "u1"})
    expect(doc == {"_id": "u1", "points": 10, "created": "now"}, f"got {doc}")
    return "insert then update, $setOnInsert once"


async def check_find_one_and_update(db: AsyncDatabase[Doc]) -> str:
    """find_one_and_update with ReturnDocument.AFTER returns the new document."""
    coll = db["fau"]
    await coll.insert_one({"_id": "f1", "seq": 1})
    after = await coll.find_one_and_update(
        {"_id": "f1"}, {"$inc": {"seq": 1}}, return_document=ReturnDocument.AFTER
    )
    expect(after is not None and after["seq"] == 2, f"AFTER returned {after}")
    upserted = await coll.find_one_and_update(
        {"_id": "f2"}, {"$inc": {"seq": 1}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    expect(upserted == {"_id": "f2", "seq": 1}, f"upsert AFTER returned {upserted}")
    return "AFTER document, also with upsert"


async def check_unique_index(db: AsyncDatabase[Doc]) -> str:
    """A unique index rejects a duplicate with DuplicateKeyError code 11000."""
    coll = db["uniq"]
    name = await coll.create_index("email", unique=True)
    expect(name == "email_1", f"index name {name!r}")
    await coll.insert_one({"_id": 1, "email": "a@example.com"})
    try:
        await coll.insert_one({"_id": 2, "email": "a@example.com"})
    except DuplicateKeyError as exc:
        expect(exc.code == 11000, f"code {exc.code}")
    else:
        raise CheckFailedError("duplicate accepted")
    try:
        await coll.update_one({"_id": "x"}, {"$set": {"email": "a@example.com"}}, upsert=True)
    except DuplicateKeyError as exc:
        expect(exc.code == 11000, f"upsert code {exc.code}")
    else:
        raise CheckFailedError("duplicate upsert accepted")
    info = await coll.index_information()
    expect(info.get("email_1", {}).get("unique") is True, f"index_information {info}")
    return "insert and upsert raise 11000; index_information shows unique"


async def check_bulk_unordered(db: AsyncDatabase[Doc]) -> str:
    """bulk_write of UpdateOne upserts, ordered=False, incl. one failing write."""
    coll = db["bulk"]
    await coll.create_index("email", unique=True)
    ops = [
        UpdateOne({"_id": i}, {"$inc": {"n": 1}, "$set": {"email": f"{i}@x"}}, upsert=True)
        for i in range(10)
    ]
    res = await coll.bulk_write(ops, ordered=False)
    expect(res.upserted_count == 10, f"upserted {res.upserted_count}")
    res = await coll.bulk_write(ops, ordered=False)
    expect(res.matched_count == 10 and res.upserted_count == 0, "second round inserted")
    bad = [
        UpdateOne({"_id": 100}, {"$set": {"email": "0@x"}}, upsert=True),  # duplicate email
        UpdateOne({"_id": 101}, {"$set": {"email": "101@x"}}, upsert=True),
    ]
    try:
        await coll.bulk_write(bad, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        expect([e["index"] for e in errors] == [0], f"writeErrors {errors}")
        expect(errors[0]["code"] == 11000, f"code {errors[0]['code']}")
    else:
        raise CheckFailedError("duplicate in bulk accepted")
    expect(await coll.count_documents({"_id": 101}) == 1, "unordered bulk stopped at the error")
    return "10 upserts, rerun matches, unordered continues past an 11000 error"


async def check_aggregate(db: AsyncDatabase[Doc]) -> str:
    """$match / $group / $sort aggregation."""
    coll = db["agg"]
    await coll.insert_many(
        [
            {"tier": t, "points": p, "active": a}
            for t, p, a in [
                ("gold", 10, True),
                ("gold", 20, True),
                ("silver", 5, True),
                ("silver", 7, False),
                ("bronze", 1, True),
            ]
        ]
    )
    pipeline: list[Doc] = [
        {"$match": {"active": True}},
        {"$group": {"_id": "$tier", "total": {"$sum": "$points"}, "count": {"$sum": 1}}},
        {"$sort": {"total": -1}},
    ]
    rows = [r async for r in await coll.aggregate(pipeline)]
    want = [
        {"_id": "gold", "total": 30, "count": 2},
        {"_id": "silver", "total": 5, "count": 1},
        {"_id": "bronze", "total": 1, "count": 1},
    ]
    expect(rows == want, f"got {rows}")
    return "3 groups in order"


async def check_array_ops(db: AsyncDatabase[Doc]) -> str:
    """Array filters, $pull, and $push with $each/$position/$slice (newest-first capped log)."""
    coll = db["arrays"]
    await coll.insert_one(
        {"_id": 1, "outbox": [{"id": "a", "sent": False}, {"id": "b", "sent": False}], "log": []}
    )
    await coll.update_one(
        {"_id": 1},
        {"$set": {"outbox.$[o].sent": True}},
        array_filters=[{"o.id": "a"}],
    )
    await coll.update_one({"_id": 1}, {"$pull": {"outbox": {"sent": True}}})
    for i in range(5):
        await coll.update_one(
            {"_id": 1}, {"$push": {"log": {"$each": [i], "$position": 0, "$slice": 3}}}
        )
    doc = await coll.find_one({"_id": 1})
    assert doc is not None
    expect(doc["outbox"] == [{"id": "b", "sent": False}], f"outbox {doc['outbox']}")
    expect(doc["log"] == [4, 3, 2], f"log {doc['log']}")
    return "arrayFilters, $pull by condition, $push $position/$slice"


async def check_offsets(db: AsyncDatabase[Doc]) -> str:
    """Per-partition offset guard: $max on a nested field plus a $lt filter, and $in loads."""
    coll = db["offsets"]
    await coll.insert_many([{"_id": f"c{i}", "offsets": {}} for i in range(3)])
    key = "offsets.loyalty-orders-3"
    first = await coll.update_one(
        {"_id": "c0", "$or": [{key: {"$exists": False}}, {key: {"$lt": 41}}]},
        {"$max": {key: 41}},
    )
    replay = await coll.update_one({"_id": "c0", key: {"$lt": 41}}, {"$max": {key: 41}})
    expect(first.modified_count == 1 and replay.matched_count == 0, "offset guard failed")
    await coll.update_one({"_id": "c0"}, {"$max": {key: 7}})
    docs = [d async for d in coll.find({"_id": {"$in": ["c0", "c1", "cX"]}})]
    expect(len(docs) == 2, f"$in returned {len(docs)}")
    c0 = next(d for d in docs if d["_id"] == "c0")
    expect(c0["offsets"] == {"loyalty-orders-3": 41}, f"offsets {c0['offsets']}")
    return "$max keeps the highest offset, replay matches 0, $in batch load"


async def check_transactions(db: AsyncDatabase[Doc]) -> str:
    """Multi-document transaction: commit makes both writes visible, abort neither."""
    coll = db["txn"]
    await coll.insert_one({"_id": "seed"})  # create the collection outside the transaction
    client = db.client
    async with client.start_session() as session, await session.start_transaction():
        await coll.insert_one({"_id": "t1"}, session=session)
        await coll.insert_one({"_id": "t2"}, session=session)
        outside = await coll.count_documents({"_id": {"$in": ["t1", "t2"]}})
        expect(outside == 0, f"uncommitted writes visible outside: {outside}")
    expect(await coll.count_documents({"_id": {"$in": ["t1", "t2"]}}) == 2, "commit lost")
    async with client.start_session() as session:
        await session.start_transaction()
        await coll.insert_one({"_id": "t3"}, session=session)
        await session.abort_transaction()
    expect(await coll.count_documents({"_id": "t3"}) == 0, "aborted write visible")
    return "commit visible, isolation holds, abort discards"


CHECKS: list[tuple[str, Check]] = [
    ("conditional update ($inc/$set/$push + version)", check_conditional_update),
    ("optimistic concurrency race (8 tasks)", check_occ_race),
    ("upsert + $setOnInsert", check_upsert),
    ("find_one_and_update AFTER", check_find_one_and_update),
    ("unique index -> DuplicateKeyError 11000", check_unique_index),
    ("bulk_write UpdateOne upserts, ordered=False", check_bulk_unordered),
    ("aggregate $match/$group/$sort", check_aggregate),
    ("arrayFilters / $pull / $push $slice", check_array_ops),
    ("offset guard $max/$lt, $in load", check_offsets),
    ("multi-document transactions", check_transactions),
]


async def run_checks(db: AsyncDatabase[Doc]) -> list[CheckResult]:
    """Run every fidelity check, each bounded in time; a failure never stops the others."""
    results = []
    for name, check in CHECKS:
        try:
            detail = await asyncio.wait_for(check(db), timeout=CHECK_TIMEOUT)
            results.append(CheckResult(name, ok=True, detail=detail))
        except CheckFailedError as exc:
            results.append(CheckResult(name, ok=False, detail=str(exc)))
        except TimeoutError:
            results.append(CheckResult(name, ok=False, detail=f"timed out after {CHECK_TIMEOUT}s"))
        except Exception as exc:  # noqa: BLE001 - a driver crash on a bad reply is a finding too
            msg = (str(exc).splitlines() or [""])[0][:200]
            results.append(CheckResult(name, ok=False, detail=f"{type(exc).__name__}: {msg}"))
    return results


# ---------------------------------------------------------------- throughput


async def seed(coll: AsyncCollection[Doc], keys: int) -> None:
    """Insert the documents the update phases work on."""
    await coll.insert_many([{"_id": i, "version": 0, "points": 0} for i in range(keys)])


async def bench_sequential(coll: AsyncCollection[Doc], ops: int, limit: float) -> Throughput:
    """One update at a time, each a version-checked $inc/$set like the service's writes."""
    keys = 100
    await seed(coll, keys)
    versions = [0] * keys
    start = time.perf_counter()
    done = 0
    while done < ops and time.perf_counter() - start < limit:
        k = done % keys
        res = await coll.update_one(
            {"_id": k, "version": versions[k]},
            {"$inc": {"points": 1, "version": 1}, "$set": {"last": done}},
        )
        if res.modified_count != 1:
            raise CheckFailedError(f"sequential update {done} did not apply")
        versions[k] += 1
        done += 1
    secs = time.perf_counter() - start
    return Throughput("sequential updates", done, secs, done / secs)


async def bench_concurrent(
    coll: AsyncCollection[Doc], ops: int, tasks: int, limit: float
) -> Throughput:
    """tasks coroutines updating disjoint documents at once."""
    await seed(coll, tasks * 10)
    start = time.perf_counter()
    counts = [0] * tasks

    async def worker(t: int) -> None:
        while counts[t] < ops // tasks and time.perf_counter() - start < limit:
            await coll.update_one(
                {"_id": t * 10 + counts[t] % 10}, {"$inc": {"points": 1, "version": 1}}
            )
            counts[t] += 1

    await asyncio.gather(*(worker(t) for t in range(tasks)))
    secs = time.perf_counter() - start
    done = sum(counts)
    return Throughput(f"concurrent updates ({tasks} tasks)", done, secs, done / secs)


async def bench_bulk(coll: AsyncCollection[Doc], ops: int, batch: int, limit: float) -> Throughput:
    """Unordered bulk_write of UpdateOne upserts, half new documents and half existing."""
    start = time.perf_counter()
    done = 0
    while done < ops and time.perf_counter() - start < limit:
        requests = [
            UpdateOne(
                {"_id": (done + i) // 2},
                {"$inc": {"points": 1}, "$push": {"log": {"$each": [done + i], "$slice": -5}}},
                upsert=True,
            )
            for i in range(batch)
        ]
        await coll.bulk_write(requests, ordered=False)
        done += batch
    secs = time.perf_counter() - start
    return Throughput(f"bulk upserts (batches of {batch})", done, secs, done / secs)


def progress(result: Throughput) -> None:
    """Print one phase's result as soon as it is known (a killed run still shows something)."""
    sys.stderr.write(f"  ... {result.name}: {result.ops} ops, {result.per_second:,.0f}/s\n")
    sys.stderr.flush()


def rss_mib(pid: int) -> float | None:
    """Resident memory of pid and its children, in MiB, from /proc."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024 if total else None


async def run(args: argparse.Namespace) -> Report:
    """Connect, check, measure, clean up."""
    report = Report(uri=args.uri, label=args.label or args.uri)
    client: AsyncMongoClient[Doc] = AsyncMongoClient(args.uri, serverSelectionTimeoutMS=5000)
    db_name = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        info = await client.admin.command("buildInfo")
        report.server_version = str(info.get("version", "?"))
        db = client[db_name]
        if not args.skip_checks:
            report.checks = await run_checks(db)
        if not args.skip_throughput:
            phases: list[Callable[[], Awaitable[Throughput]]] = [
                lambda: bench_sequential(db["seq"], args.ops, args.time_limit),
                lambda: bench_concurrent(db["conc"], args.ops, args.tasks, args.time_limit),
                lambda: bench_bulk(db["bulk_tp"], args.bulk_ops, args.batch, args.time_limit),
            ]
            for phase in phases:
                try:
                    report.throughput.append(await phase())
                except Exception as exc:  # noqa: BLE001 - report the phase as failed, go on
                    msg = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:150]}"
                    report.throughput.append(Throughput("failed phase", 0, 0.0, 0.0, msg))
                progress(report.throughput[-1])
        if args.pid:
            report.rss_mib = rss_mib(args.pid)
    finally:
        try:
            await client.drop_database(db_name)
        finally:
            await client.close()
    return report


def render(report: Report) -> str:
    """A plain-text summary of one report."""
    lines = [f"# {report.label}  (server reports {report.server_version})"]
    for c in report.checks:
        lines.append(f"  [{'PASS' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
    for t in report.throughput:
        note = f"  {t.note}" if t.note else ""
        lines.append(f"  {t.name}: {t.ops} ops in {t.seconds:.1f}s = {t.per_second:,.0f}/s{note}")
    if report.rss_mib is not None:
        lines.append(f"  server RSS after run: {report.rss_mib:.0f} MiB")
    passed = sum(c.ok for c in report.checks)
    lines.append(f"  checks: {passed}/{len(report.checks)} passed")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print; exit 1 when a fidelity check failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--uri", required=True)
    parser.add_argument("--label", default="")
    parser.add_argument("--ops", type=int, default=5000, help="updates per update phase")
    parser.add_argument("--bulk-ops", type=int, default=10000, help="upserts in the bulk phase")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per phase")
    parser.add_argument("--pid", type=int, default=0, help="server PID, to report its RSS")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument("--skip-checks", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    sys.stdout.write(render(report) + "\n")
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2) + "\n")
    return 0 if all(c.ok for c in report.checks) else 1


if __name__ == "__main__":
    sys.exit(main())
