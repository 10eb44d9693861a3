"""The ``CustomerRepository`` contract, written once and run against every implementation.

``tests/unit/test_store_memory.py`` runs it on the in-memory repository and
``tests/integration/test_store_mongo.py`` on MongoDB: a subclass provides the ``repo`` fixture,
a repository whose orders beyond ``HOT_ORDERS`` per customer move to the archive at every save,
and ``slack_repo``, one that lets ``ORDER_SLACK`` orders and ``ID_SLACK`` ids more accumulate
before it archives (water marks, ``store.hot.plan_write``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from models.outputs import Cause
from models.state import (
    APPLIED_IDS_LIMIT,
    ActivityEntry,
    CustomerState,
    OrderRecord,
    PointsLot,
    RewardGrant,
)
from store.repository import (
    ActivityRecord,
    CustomerFilter,
    CustomerRepository,
    CustomerWrite,
    DueCustomer,
    LoadRequest,
    OutboxEntry,
    ParkedMessage,
    StoredCustomer,
)

HOT_ORDERS = 3
ORDER_SLACK = 2
ID_SLACK = 8
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TP = ("loyalty.orders", 2)
CAUSE = Cause(type="order.paid", id="m-0")


def new_id(prefix: str = "c") -> str:
    """Return an id unique to this test run."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def customer(cid: str, email: str | None = None, **fields: Any) -> CustomerState:
    """Return a fresh customer state."""
    email = email or f"{cid}@Example.com"
    return CustomerState(
        customer_id=cid,
        email=email,
        email_normalized=email.strip().casefold(),
        joined_at=T0,
        **fields,
    )


def order(order_id: str, days: int = 0, total: str = "10.00") -> OrderRecord:
    """Return an order record paid ``days`` after T0."""
    return OrderRecord(
        order_id=order_id,
        paid_at=T0 + timedelta(days=days),
        total=Decimal(total),
        currency="EUR",
        points_earned=10,
        stamps_earned=0,
    )


def activity(activity_id: str, minutes: int = 0, kind: str = "points_earned") -> ActivityEntry:
    """Return an activity entry ``minutes`` after T0."""
    return ActivityEntry(
        activity_id=activity_id, at=T0 + timedelta(minutes=minutes), kind=kind, cause=CAUSE
    )


def parked(
    cid: str, offset: int, at: datetime = T0, topic: str = "loyalty.orders"
) -> ParkedMessage:
    """Return a parked raw message."""
    return ParkedMessage(
        customer_id=cid,
        topic=topic,
        partition=0,
        offset=offset,
        key=cid.encode(),
        value=b'{"id": "x\xc3\xa9"}',
        parked_at=at,
    )


async def create(repo: CustomerRepository, state: CustomerState, **extra: Any) -> StoredCustomer:
    """Create a customer and return it as loaded."""
    result = await repo.save_batch([CustomerWrite(state=state, loaded=None, **extra)])
    assert result.saved == {state.customer_id}, result
    return await load(repo, state.customer_id)


async def load(repo: CustomerRepository, cid: str, **request: Any) -> StoredCustomer:
    """Load one customer that must exist."""
    found = await repo.load_many([LoadRequest(customer_id=cid, **request)])
    return found[cid]


async def update(
    repo: CustomerRepository, loaded: StoredCustomer, state: CustomerState, **extra: Any
) -> StoredCustomer:
    """Save a new state over a loaded customer and return it reloaded."""
    result = await repo.save_batch([CustomerWrite(state=state, loaded=loaded, **extra)])
    assert result.saved == {state.customer_id}, result
    return await load(repo, state.customer_id)


class CustomerRepositoryContract:
    """Behaviour every ``CustomerRepository`` must have; subclasses provide ``repo``."""

    # --- load and save -------------------------------------------------------------------

    async def test_a_saved_customer_loads_back_with_version_and_offsets(
        self, repo: CustomerRepository
    ) -> None:
        cid = new_id()
        state = customer(cid, first_name="Ana", points_lots=(_lot(),), orders=(order("o1"),))

        stored = await create(repo, state, offsets={TP: 41})

        assert stored.state == state
        assert stored.version == 1
        assert stored.offsets == {TP: 41}
        assert stored.applied_offset(TP) == 41
        assert stored.applied_offset(("loyalty.orders", 3)) == -1

    async def test_load_many_returns_only_existing_customers_across_chunks(
        self, repo: CustomerRepository
    ) -> None:
        ids = [new_id() for _ in range(130)]
        result = await repo.save_batch(
            [CustomerWrite(state=customer(cid), loaded=None) for cid in ids]
        )
        missing = new_id("missing")

        found = await repo.load_many([LoadRequest(customer_id=c) for c in [*ids, missing]])

        assert result.saved == set(ids)
        assert set(found) == set(ids)
        assert all(found[c].state.customer_id == c for c in ids)

    async def test_a_stale_version_is_a_conflict_and_writes_nothing(
        self, repo: CustomerRepository
    ) -> None:
        cid = new_id()
        loaded = await create(repo, customer(cid))
        first = loaded.state.model_copy(update={"stamps_balance": 1, "version": 1})
        second = loaded.state.model_copy(update={"stamps_balance": 7, "version": 1})
        await update(repo, loaded, first, offsets={TP: 5})

        result = await repo.save_batch(
            [
                CustomerWrite(
                    state=second,
                    loaded=loaded,
                    offsets={TP: 9},
                    outbox=(_out("late"),),
                    activity=(ActivityRecord(activity("stale")),),
                )
            ]
        )

        assert result.conflicts == {cid}
        assert result.saved == set()
        now = await load(repo, cid)
        assert now.state.stamps_balance == 1
        assert now.version == 2
        assert now.offsets == {TP: 5}
        assert now.outbox == ()
        assert (await repo.activity(cid)).entries == ()

    async def test_creating_an_existing_customer_is_a_conflict(
        self, repo: CustomerRepository
    ) -> None:
        cid = new_id()
        await create(repo, customer(cid, first_name="First"))

        result = await repo.save_batch(
            [CustomerWrite(state=customer(cid, first_name="Second"), loaded=None)]
        )

        assert result.conflicts == {cid}
        assert (await load(repo, cid)).state.first_name == "First"

    async def test_one_conflict_does_not_stop_the_rest_of_the_batch(
        self, repo: CustomerRepository
    ) -> None:
        a, b = new_id(), new_id()
        loaded_a = await create(repo, customer(a))
        loaded_b = await create(repo, customer(b))
        await update(repo, loaded_a, loaded_a.state.model_copy(update={"stamps_balance": 2}))

        result = await repo.save_batch(
            [
                CustomerWrite(state=loaded_a.state, loaded=loaded_a),
                CustomerWrite(
                    state=loaded_b.state.model_copy(update={"stamps_balance": 3}), loaded=loaded_b
                ),
            ]
        )

        assert result.conflicts == {a}
        assert result.saved == {b}
        assert (await load(repo, b)).state.stamps_balance == 3

    async def test_offsets_only_move_forward(self, repo: CustomerRepository) -> None:
        cid = new_id()
        other = ("loyalty.adjustments", 0)
        loaded = await create(repo, customer(cid), offsets={TP: 10, other: 3})

        stored = await update(repo, loaded, loaded.state, offsets={TP: 7})

        assert stored.offsets == {TP: 10, other: 3}
        stored = await update(repo, stored, stored.state, offsets={TP: 12})
        assert stored.offsets == {TP: 12, other: 3}

    async def test_user_data_is_stored_as_values_never_as_operators(
        self, repo: CustomerRepository
    ) -> None:
        cid = "$gt." + new_id()
        state = customer(cid, email=f"$where.{cid}@x.example", groups=("$in",))
        state = state.model_copy(update={"orders": (order("$set.a.b"),), "applied_ids": ("$ne",)})

        stored = await create(repo, state)

        assert stored.state == state
        assert await repo.customer_id_by_email(f"$WHERE.{cid}@x.example") == cid
        assert [m async for m in repo.group_members("$in")] == [cid]

    # --- email uniqueness -------------------------------------------------------------------

    async def test_email_lookup_ignores_case_and_surrounding_space(
        self, repo: CustomerRepository
    ) -> None:
        cid = new_id()
        await create(repo, customer(cid, email=f"Ana.{cid}@Example.COM"))

        assert await repo.customer_id_by_email(f"  ana.{cid}@example.com ") == cid
        assert await repo.customer_id_by_email(f"bob.{cid}@example.com") is None
        owners = await repo.email_owners([f"ANA.{cid}@example.com", "nobody@example.com"])
        assert owners == {f"ana.{cid}@example.com": cid}

    async def test_an_email_held_by_another_customer_is_refused_and_nothing_written(
        self, repo: CustomerRepository
    ) -> None:
        owner, newcomer, mover = new_id(), new_id(), new_id()
        email = f"shared.{owner}@example.com"
        await create(repo, customer(owner, email=email))
        loaded_mover = await create(repo, customer(mover))
        moved = customer(mover, email=email.upper())

        result = await repo.save_batch(
            [
                CustomerWrite(
                    state=customer(newcomer, email=email.title()),
                    loaded=None,
                    activity=(ActivityRecord(activity("joined")),),
                ),
                CustomerWrite(state=moved, loaded=loaded_mover, offsets={TP: 3}),
            ]
        )

        assert result.email_taken == {newcomer: owner, mover: owner}
        assert result.saved == set()
        assert await repo.load_many([LoadRequest(customer_id=newcomer)]) == {}
        assert (await load(repo, mover)).state.email == f"{mover}@Example.com"
        assert (await repo.activity(newcomer)).entries == ()

    async def test_a_customer_may_keep_and_recase_its_own_email(
        self, repo: CustomerRepository
    ) -> None:
        cid = new_id()
        loaded = await create(repo, customer(cid, email=f"me.{cid}@example.com"))

        stored = await update(repo, loaded, customer(cid, email=f"ME.{cid}@EXAMPLE.com"))

        assert stored.state.email == f"ME.{cid}@EXAMPLE.com"

    # --- outbox -----------------------------------------------------------------------------

    async def test_outbox_entries_stay_pending_until_marked_sent(
        self, repo: CustomerRepository
    ) -> None:
        cid = new_id()
        loaded = await create(repo, customer(cid), outbox=(_out("o-1"), _out("o-2")))
        await update(repo, loaded, loaded.state, outbox=(_out("o-3"),))

        pending = await repo.pending_outbox(customer_ids=[cid])
        assert [p.customer_id for p in pending] == [cid]
        assert [e.output_id for e in pending[0].entries] == ["o-1", "o-2", "o-3"]
        assert pending[0].entries[0] == _out("o-1")

        await repo.mark_sent({cid: ["o-1", "o-3"]})
        pending = await repo.pending_outbox(customer_ids=[cid])
        assert [e.output_id for e in pending[0].entries] == ["o-2"]

        await repo.mark_sent({cid: ["o-2"]})
        assert await repo.pending_outbox(customer_ids=[cid]) == []
        assert cid not in {p.customer_id for p in await repo.pending_outbox(limit=100_000)}

    async def test_pending_outbox_without_filter_finds_every_customer_with_unsent_outputs(
        self, repo: CustomerRepository
    ) -> None:
        with_outbox, without = new_id(), new_id()
        await create(repo, customer(with_outbox), outbox=(_out("x"),))
        await create(repo, customer(without))

        found = {p.customer_id for p in await repo.pending_outbox(limit=100_000)}

        assert with_outbox in found
        assert without not in found

    async def test_pending_outbox_written_before_returns_only_older_entries(
        self, repo: CustomerRepository
    ) -> None:
        cutoff = T0 + timedelta(minutes=1)
        mixed, young, legacy, at_cutoff = new_id(), new_id(), new_id(), new_id()
        old_at = T0 + timedelta(microseconds=123_456)  # kept to the millisecond, as in BSON
        await create(
            repo,
            customer(mixed),
            outbox=(_out("m-old", old_at), _out("m-new", cutoff + timedelta(seconds=1))),
        )
        await create(repo, customer(young), outbox=(_out("y", cutoff + timedelta(minutes=5)),))
        await create(repo, customer(legacy), outbox=(_out("l"),))  # stored before written_at
        await create(repo, customer(at_cutoff), outbox=(_out("c", cutoff),))
        ours = {mixed, young, legacy, at_cutoff}

        pending = await repo.pending_outbox(written_before=cutoff, limit=100_000)
        due = {p.customer_id: p.entries for p in pending if p.customer_id in ours}

        assert set(due) == {mixed, legacy}
        assert [e.output_id for e in due[mixed]] == ["m-old"]
        assert due[mixed][0].written_at == T0 + timedelta(milliseconds=123)
        assert due[legacy] == (_out("l"),)
        only = await repo.pending_outbox(customer_ids=[mixed, young], written_before=cutoff)
        assert [(p.customer_id, [e.output_id for e in p.entries]) for p in only] == [
            (mixed, ["m-old"])
        ]

        await repo.mark_sent({mixed: ["m-old"]})
        later = await repo.pending_outbox(written_before=cutoff, limit=100_000)
        assert mixed not in {p.customer_id for p in later}
        [still] = await repo.pending_outbox(customer_ids=[mixed])
        assert [e.output_id for e in still.entries] == ["m-new"]

    # --- activity -----------------------------------------------------------------------------

    async def test_activity_is_newest_first_in_pages_and_reinserting_is_a_no_op(
        self, repo: CustomerRepository
    ) -> None:
        cid = new_id()
        entries = [ActivityRecord(activity(f"a{n}", minutes=n)) for n in range(5)]
        await create(repo, customer(cid), activity=tuple(entries[:3]))
        await repo.append_activity(cid, entries)
        changed = ActivityRecord(activity("a0", minutes=0, kind="something_else"))
        await repo.append_activity(cid, [changed])

        first = await repo.activity(cid, limit=2)
        second = await repo.activity(cid, limit=2, before=first.next)
        third = await repo.activity(cid, limit=2, before=second.next)

        assert [e.activity_id for e in first.entries] == ["a4", "a3"]
        assert [e.activity_id for e in second.entries] == ["a2", "a1"]
        assert [e.activity_id for e in third.entries] == ["a0"]
        assert third.entries[0].kind == "points_earned"
        assert third.next is None
        assert (await repo.activity(new_id())).entries == ()

    async def test_batch_activity_counts_applied_and_refused_rows(
        self, repo: CustomerRepository
    ) -> None:
        batch = new_id("batch")
        a, b = new_id(), new_id()
        refused = activity("r", kind="rejected")
        refused = refused.model_copy(update={"details": {"code": "unknown_tier", "reason": "no"}})
        await create(repo, customer(a), activity=(ActivityRecord(activity("t"), batch, 2),))
        await create(
            repo,
            customer(b),
            activity=(
                ActivityRecord(activity("t1"), batch, 3),
                ActivityRecord(activity("t2", kind="tier_changed"), batch, 3),
                ActivityRecord(refused, batch, 4),
                ActivityRecord(activity("other"), "another-batch", 5),
            ),
        )

        counts = await repo.batch_activity(batch)

        assert (counts.applied, counts.refused) == (2, 1)
        assert [(r.row, r.code, r.reason) for r in counts.refusals] == [(4, "unknown_tier", "no")]
        assert (await repo.batch_activity(new_id("none"))).applied == 0

    # --- parking --------------------------------------------------------------------------

    async def test_parked_messages_come_back_in_arrival_order_once(
        self, repo: CustomerRepository
    ) -> None:
        cid, other = new_id(), new_id()
        late = parked(cid, 1, at=T0 + timedelta(seconds=5), topic="loyalty.customers")
        early = [parked(cid, 9), parked(cid, 3)]
        await repo.park(early)
        await repo.park([late, parked(other, 4), *early])

        found = await repo.parked_for([cid])

        assert found[cid] == [*early, late]
        await repo.unpark(early)
        assert (await repo.parked_for([cid, other]))[cid] == [late]
        assert (await repo.parked_for([new_id()])) == {}

    async def test_erasing_a_customer_blanks_notes_and_drops_parked_messages_only_theirs(
        self, repo: CustomerRepository
    ) -> None:
        cid, other = new_id(), new_id()
        noted = activity("n1").model_copy(
            update={"internal_note": "called Ana Lima", "customer_note": "for ana@example.com"}
        )
        for who in (cid, other):
            await create(repo, customer(who), activity=(ActivityRecord(noted),))
            await repo.park([parked(who, 7 if who == cid else 8)])

        for _ in range(2):  # idempotent: a redelivered customer.forget erases again
            await repo.erase_personal_data(cid)

        [erased] = (await repo.activity(cid)).entries
        assert (erased.internal_note, erased.customer_note) == (None, None)
        assert (erased.kind, erased.delta) == (noted.kind, noted.delta)  # the ledger stays
        [kept] = (await repo.activity(other)).entries
        assert kept.internal_note == "called Ana Lima"
        assert cid not in await repo.parked_for([cid, other])
        assert other in await repo.parked_for([other])

    async def test_old_parked_messages_can_be_found_to_refuse_them(
        self, repo: CustomerRepository
    ) -> None:
        cid = new_id()
        far_past = datetime(2001, 1, 1, tzinfo=UTC)
        old, recent = parked(cid, 1, at=far_past), parked(cid, 2, at=T0)
        before = await repo.parked_count()
        await repo.park([old, recent])

        found = await repo.parked_before(far_past + timedelta(days=1), limit=10_000)

        assert old in found
        assert recent not in found
        assert await repo.parked_count() == before + 2

    # --- queries ------------------------------------------------------------------------

    async def test_due_customers_come_in_bounded_pages_by_due_time(
        self, repo: CustomerRepository
    ) -> None:
        # Far in the past, so that other tests' customers are never due before these.
        base = datetime(1990, 1, 1, tzinfo=UTC)
        ids = [new_id() for _ in range(5)]
        for n, cid in enumerate(ids):
            lot = _lot(expires_at=base + timedelta(days=n))
            await create(repo, customer(cid, points_lots=(lot,)))
        await create(
            repo, customer(new_id(), points_lots=(_lot(expires_at=base.replace(year=1991)),))
        )

        cutoff = base + timedelta(days=3, hours=1)
        first = await repo.due_customers(cutoff, limit=3)
        second = await repo.due_customers(cutoff, after=first[-1], limit=3)

        assert [d.customer_id for d in first] == ids[:3]
        assert [d.customer_id for d in second] == ids[3:4]
        assert first[0] == DueCustomer(due_at=base, customer_id=ids[0])

    async def test_customers_due_at_the_same_moment_are_paged_by_id_once_each(
        self, repo: CustomerRepository
    ) -> None:
        # Points expire at the end of a day: many customers share one due time.
        due = datetime(1980, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
        ids = sorted(new_id() for _ in range(5))
        for cid in ids:
            await create(repo, customer(cid, points_lots=(_lot(expires_at=due),)))

        seen: list[str] = []
        after = None
        while True:
            page = await repo.due_customers(due, after=after, limit=2)
            if not page:
                break
            seen.extend(d.customer_id for d in page)
            after = page[-1]

        assert [cid for cid in seen if cid in ids] == ids

    async def test_activity_at_the_same_moment_is_paged_by_id_once_each(
        self, repo: CustomerRepository
    ) -> None:
        cid = new_id()
        names = ["a", "b", "c", "d", "e"]
        records = tuple(ActivityRecord(activity(n)) for n in names)
        await create(repo, customer(cid), activity=records)

        seen: list[str] = []
        page = await repo.activity(cid, limit=2)
        seen.extend(e.activity_id for e in page.entries)
        while page.next is not None:
            page = await repo.activity(cid, limit=2, before=page.next)
            seen.extend(e.activity_id for e in page.entries)

        assert seen == names[::-1]

    async def test_due_time_groups_and_codes_follow_the_latest_save(
        self, repo: CustomerRepository
    ) -> None:
        cid, old_group, new_group = new_id(), new_id("group"), new_id("group")
        due = datetime(1985, 1, 1, tzinfo=UTC)
        loaded = await create(
            repo, customer(cid, groups=(old_group,), points_lots=(_lot(expires_at=due),))
        )
        assert DueCustomer(due_at=due, customer_id=cid) in await repo.due_customers(due)

        moved = loaded.state.model_copy(update={"groups": (new_group,), "points_lots": ()})
        await update(repo, loaded, moved)

        assert cid not in {d.customer_id for d in await repo.due_customers(due)}
        assert [m async for m in repo.group_members(old_group)] == []
        assert [m async for m in repo.group_members(new_group)] == [cid]

    async def test_a_grant_code_finds_its_customer(self, repo: CustomerRepository) -> None:
        cid, code = new_id(), new_id("CODE").upper()
        grant = RewardGrant(
            grant_id="g-1",
            reward_id="free-coffee",
            code=code,
            status="issued",
            origin="card",
            granted_at=T0,
            cause=CAUSE,
        )

        await create(repo, customer(cid, rewards=(grant,)))

        assert await repo.customer_id_by_code(code) == cid
        assert await repo.customer_id_by_code(code.lower() + "-nope") is None

    async def test_codes_granted_by_later_saves_find_their_customer(
        self, repo: CustomerRepository
    ) -> None:
        cid, first, later = new_id(), new_id("CODE").upper(), new_id("CODE").upper()
        grant = RewardGrant(
            grant_id="g-1",
            reward_id="free-coffee",
            code=first,
            status="issued",
            origin="card",
            granted_at=T0,
            cause=CAUSE,
        )
        loaded = await create(repo, customer(cid, rewards=(grant,)))
        used = grant.model_copy(update={"status": "used", "used_at": T0})
        second = grant.model_copy(update={"grant_id": "g-2", "code": later})

        stored = await update(repo, loaded, loaded.state.model_copy(update={"rewards": (used,)}))
        await update(repo, stored, stored.state.model_copy(update={"rewards": (used, second)}))

        assert await repo.customer_id_by_code(first) == cid
        assert await repo.customer_id_by_code(later) == cid

    async def test_group_members_stream_from_a_cursor(self, repo: CustomerRepository) -> None:
        group = new_id("group")
        members = sorted(new_id() for _ in range(7))
        outsider = new_id()
        await repo.save_batch(
            [CustomerWrite(state=customer(c, groups=(group, "all")), loaded=None) for c in members]
            + [CustomerWrite(state=customer(outsider, groups=("all",)), loaded=None)]
        )

        streamed = [cid async for cid in repo.group_members(group)]

        assert streamed == members

    async def test_customer_ids_stream_every_customer(self, repo: CustomerRepository) -> None:
        ids = {new_id() for _ in range(3)}
        await repo.save_batch([CustomerWrite(state=customer(c), loaded=None) for c in ids])

        streamed = [cid async for cid in repo.customer_ids()]

        assert ids <= set(streamed)
        assert streamed == sorted(streamed)

    async def test_customers_without_an_email_never_collide_and_free_their_email(
        self, repo: CustomerRepository
    ) -> None:
        first, second, third = new_id(), new_id(), new_id()
        email = f"{first}@example.com"
        for cid in (first, second):
            await create(
                repo, customer(cid).model_copy(update={"email": "", "email_normalized": ""})
            )
        loaded = await load(repo, first)
        await update(repo, loaded, customer(first, email))
        assert await repo.customer_id_by_email(email.upper()) == first
        taken = await repo.save_batch([CustomerWrite(state=customer(third, email), loaded=None)])
        assert taken.email_taken == {third: first}

        loaded = await load(repo, first)
        await update(
            repo, loaded, loaded.state.model_copy(update={"email": "", "email_normalized": ""})
        )
        assert await repo.customer_id_by_email(email) is None
        await create(repo, customer(third, email))
        assert await repo.email_owners([email]) == {email.casefold(): third}

    async def test_listing_is_newest_first_filtered_and_paged(
        self, repo: CustomerRepository
    ) -> None:
        tag = new_id("list")
        people = [
            ("a", "Gold", "active", 1),
            ("b", "Silver", "active", 2),
            ("c", "Gold", "removed", 3),
            ("d", None, "active", 3),  # joined with c: the id breaks the tie
            ("e", "Gold", "active", 5),
        ]
        states = [
            customer(
                f"{tag}-{name}", f"{name}.{tag}@Example.com", tier=tier, status=status
            ).model_copy(update={"joined_at": T0 + timedelta(days=day)})
            for name, tier, status, day in people
        ]
        await repo.save_batch([CustomerWrite(state=s, loaded=None) for s in states])
        mine = CustomerFilter(email_contains=f".{tag.upper()}@example")

        async def names(where: CustomerFilter, limit: int = 50) -> list[str]:
            found: list[str] = []
            after = None
            while True:
                page = await repo.list_customers(where, after=after, limit=limit)
                found += [c.customer_id.removeprefix(f"{tag}-") for c in page.customers]
                if page.next is None:
                    return found
                after = page.next

        assert await names(mine) == ["e", "d", "c", "b", "a"]
        assert await names(mine, limit=2) == ["e", "d", "c", "b", "a"]
        gold = CustomerFilter(tier="Gold", email_contains=tag)
        assert await names(gold) == ["e", "c", "a"]
        active_gold = CustomerFilter(tier="Gold", status="active", email_contains=tag)
        assert await names(active_gold) == ["e", "a"]
        assert await names(CustomerFilter(email_contains=f"b.{tag}")) == ["b"]
        assert await names(CustomerFilter(email_contains=f"{tag}.*")) == []  # text, no pattern
        first = await repo.list_customers(mine, limit=3)
        assert len(first.customers) == 3
        assert first.next is not None

    # --- the hot document -------------------------------------------------------------------

    async def test_ids_leaving_the_ring_are_archived_and_known_on_load(
        self, repo: CustomerRepository
    ) -> None:
        cid = new_id()
        ring = tuple(f"m{n}" for n in range(APPLIED_IDS_LIMIT))
        loaded = await create(repo, customer(cid, applied_ids=ring))
        shifted = (*ring[10:], *(f"n{n}" for n in range(10)))

        await update(repo, loaded, loaded.state.model_copy(update={"applied_ids": shifted}))
        stored = await load(repo, cid, message_ids=frozenset({"m0", "m9", "m10", "zz"}))

        assert stored.state.applied_ids == shifted
        assert stored.known_ids == {"m0", "m9"}
        assert stored.state.known_ids == {"m0", "m9"}
        assert stored.state.has_applied("m0")

    async def test_requests_for_one_customer_are_merged(self, repo: CustomerRepository) -> None:
        cid = new_id()
        ring = tuple(f"m{n}" for n in range(APPLIED_IDS_LIMIT))
        loaded = await create(repo, customer(cid, applied_ids=ring))
        shifted = (*ring[2:], "n0", "n1")
        await update(repo, loaded, loaded.state.model_copy(update={"applied_ids": shifted}))

        found = await repo.load_many(
            [
                LoadRequest(customer_id=cid, message_ids=frozenset({"m0"})),
                LoadRequest(customer_id=cid, message_ids=frozenset({"m1"})),
            ]
        )

        assert found[cid].known_ids == {"m0", "m1"}

    async def test_ids_that_leave_the_ring_within_one_batch_stay_until_committed(
        self, repo: CustomerRepository
    ) -> None:
        cid = new_id()
        loaded = await create(repo, customer(cid, applied_ids=("old",)))
        ring = tuple(f"b{n}" for n in range(1, 4))  # as if "old" and "b0" fell off the ring

        stored = await update(
            repo,
            loaded,
            loaded.state.model_copy(update={"applied_ids": ring}),
            applied_ids=("b0", *ring),
        )

        assert stored.state.applied_ids == ("b0", *ring)
        assert (await load(repo, cid, message_ids=frozenset({"old"}))).known_ids == {"old"}

    async def test_old_orders_move_to_the_archive_and_come_back_when_referenced(
        self, repo: CustomerRepository
    ) -> None:
        cid = new_id()
        orders = tuple(order(f"o{n}", days=n) for n in range(5))
        loaded = await create(repo, customer(cid, orders=orders))
        assert len(loaded.state.orders) == 5  # new records stay until they are committed

        stored = await update(repo, loaded, loaded.state)
        assert {o.order_id for o in stored.state.orders} == {"o2", "o3", "o4"}
        assert (await repo.get(cid)) == stored

        referenced = await load(repo, cid, order_ids=frozenset({"o0", "o3", "o9"}))
        assert [o.order_id for o in referenced.state.orders] == ["o0", "o2", "o3", "o4"]
        assert referenced.state.order("o0") == orders[0]
        assert referenced.restored_order_ids == {"o0"}

    async def test_a_restored_order_changed_by_the_batch_is_kept_and_later_archived(
        self, repo: CustomerRepository
    ) -> None:
        cid = new_id()
        orders = tuple(order(f"o{n}", days=n) for n in range(5))
        loaded = await create(repo, customer(cid, orders=orders))
        loaded = await update(repo, loaded, loaded.state)
        loaded = await load(repo, cid, order_ids=frozenset({"o0"}))
        refunded = orders[0].model_copy(update={"refund_ids": ("r1",), "points_reversed": 10})
        changed = (refunded, *orders[2:])

        stored = await update(repo, loaded, loaded.state.model_copy(update={"orders": changed}))
        assert stored.state.order("o0") == refunded

        await update(repo, stored, stored.state)
        assert (await repo.get(cid)).state.order("o0") is None  # type: ignore[union-attr]
        again = await load(repo, cid, order_ids=frozenset({"o0"}))
        assert again.state.order("o0") == refunded

    async def test_a_stale_writer_never_overwrites_a_newer_archived_order(
        self, repo: CustomerRepository
    ) -> None:
        cid = new_id()
        orders = tuple(order(f"o{n}", days=n) for n in range(4))
        stale = await create(repo, customer(cid, orders=orders))
        # A newer writer refunds o0 and then archives it (version 3's content).
        refunded = orders[0].model_copy(update={"refund_ids": ("r1",)})
        newer = await update(
            repo, stale, stale.state.model_copy(update={"orders": (refunded, *orders[1:])})
        )
        await update(repo, newer, newer.state)

        # The stale writer (version 1) would archive o0 as it knew it: a conflict, and the
        # archive must still hold the refunded record.
        result = await repo.save_batch([CustomerWrite(state=stale.state, loaded=stale)])

        assert result.conflicts == {cid}
        again = await load(repo, cid, order_ids=frozenset({"o0"}))
        assert again.state.order("o0") == refunded

    async def test_orders_stay_until_the_high_water_mark_then_move_together(
        self, slack_repo: CustomerRepository
    ) -> None:
        repo = slack_repo
        cid = new_id()
        orders = tuple(order(f"o{n}", days=n) for n in range(HOT_ORDERS + ORDER_SLACK))
        loaded = await create(repo, customer(cid, orders=orders))

        held = await update(repo, loaded, loaded.state)
        assert [o.order_id for o in held.state.orders] == [o.order_id for o in orders]

        more = (*orders, order("o5", days=5))
        stored = await update(repo, held, held.state.model_copy(update={"orders": more}))
        assert [o.order_id for o in stored.state.orders] == ["o3", "o4", "o5"]
        assert (await repo.get(cid)) == stored

        referenced = await load(repo, cid, order_ids=frozenset({"o0", "o2", "o9"}))
        assert [o.order_id for o in referenced.state.orders] == ["o0", "o2", "o3", "o4", "o5"]
        assert referenced.restored_order_ids == {"o0", "o2"}

    async def test_ids_stay_until_the_high_water_mark_then_move_together(
        self, slack_repo: CustomerRepository
    ) -> None:
        repo = slack_repo
        cid = new_id()
        ring = tuple(f"m{n}" for n in range(APPLIED_IDS_LIMIT))
        loaded = await create(repo, customer(cid, applied_ids=ring))
        first = (*ring[4:], *(f"n{n}" for n in range(4)))

        held = await update(repo, loaded, loaded.state.model_copy(update={"applied_ids": first}))
        assert held.state.applied_ids == (*ring[:4], *first)
        assert held.state.has_applied("m0")

        second = (*first[6:], *(f"n{n}" for n in range(4, 10)))
        stored = await update(repo, held, held.state.model_copy(update={"applied_ids": second}))
        found = await load(repo, cid, message_ids=frozenset({"m0", "m9", "m10", "n0", "zz"}))

        assert stored.state.applied_ids == second
        assert found.known_ids == {"m0", "m9"}
        assert found.state.has_applied("m9")
        assert found.state.has_applied("n0")
        assert not found.state.has_applied("zz")


def _lot(expires_at: datetime | None = None) -> PointsLot:
    return PointsLot(
        lot_id="lot-1", amount=5, original=5, earned_at=T0, expires_at=expires_at, cause=CAUSE
    )


def _out(output_id: str, written_at: datetime | None = None) -> OutboxEntry:
    return OutboxEntry(
        output_id=output_id,
        topic="loyalty.tier-changes",
        key="k",
        value=b'{"id": "\xc3\xa9"}',
        written_at=written_at,
    )
