"""Exact duplicate detection with no horizon: the recent ring, the store's archive, row keys."""

from __future__ import annotations

from models.decide import Decision, applied_keys, decide
from models.messages import InputMessage
from models.state import APPLIED_IDS_LIMIT, CustomerState
from tests.unit.factories import CODE_KEY, NOW, PROGRAM, joined, msg


class ArchivingStore:
    """What the store does around ``decide``: persist the document, archive forgotten ids."""

    def __init__(self, state: CustomerState) -> None:
        self.document = state.model_dump(mode="json")
        self.archive: set[str] = set()

    def handle(self, message: InputMessage) -> Decision:
        state = CustomerState.model_validate(self.document)
        state = state.with_known_ids(k for k in applied_keys(message) if k in self.archive)
        decision = decide(state, message, PROGRAM, NOW, code_key=CODE_KEY)
        if not decision.duplicate:
            assert decision.state is not None
            self.archive.update(decision.forgotten_ids)  # archive first, then the update
            self.document = decision.state.model_dump(mode="json")
        return decision


def adjustment(n: int) -> InputMessage:
    return msg("stamps.adjust", {"delta": 1}, id=f"s-{n}")


def test_the_ring_is_bounded_and_reports_what_falls_off() -> None:
    state = joined()
    join_id = state.applied_ids[0]
    forgotten: list[str] = []
    for n in range(APPLIED_IDS_LIMIT + 10):
        decision = decide(state, adjustment(n), PROGRAM, NOW, code_key=CODE_KEY)
        assert decision.state is not None
        state, forgotten = decision.state, [*forgotten, *decision.forgotten_ids]
    assert len(state.applied_ids) == APPLIED_IDS_LIMIT
    assert forgotten == [join_id, *(f"s-{n}" for n in range(10))]  # oldest first
    assert "known_ids" not in state.model_dump(mode="json")


def test_a_resend_long_after_is_a_duplicate_when_the_store_archives_forgotten_ids() -> None:
    store = ArchivingStore(joined())
    first = store.handle(adjustment(0))
    for n in range(1, APPLIED_IDS_LIMIT + 50):
        store.handle(adjustment(n))
    assert "s-0" not in store.document["applied_ids"]
    balance = store.document["stamps_balance"]
    again = store.handle(adjustment(0))
    assert first.rejection is None
    assert again.duplicate
    assert again.outputs == ()
    assert again.activity == ()
    assert store.document["stamps_balance"] == balance


def test_an_id_forgotten_within_a_batch_is_still_known_to_the_rest_of_the_batch() -> None:
    state = joined()
    for n in range(APPLIED_IDS_LIMIT + 1):  # one store batch: the state is never reloaded
        decision = decide(state, adjustment(n), PROGRAM, NOW, code_key=CODE_KEY)
        assert decision.state is not None
        state = decision.state
    assert "s-0" not in state.applied_ids
    assert decide(state, adjustment(0), PROGRAM, NOW, code_key=CODE_KEY).duplicate


def test_an_import_row_applied_once_whatever_the_message_id() -> None:
    batch = {"id": "tiers-2025", "row": 7, "suppress_notifications": True}
    row = msg("points.adjust", {"delta": 50}, id="tiers-2025:7", batch=batch, source="import")
    resent = msg("points.adjust", {"delta": 50}, id="retry-of-row-7", batch=batch)
    assert applied_keys(resent) == ("retry-of-row-7", "tiers-2025:7")
    first = decide(joined(), row, PROGRAM, NOW, code_key=CODE_KEY)
    assert first.state is not None
    second = decide(first.state, resent, PROGRAM, NOW, code_key=CODE_KEY)
    assert second.duplicate
    assert second.state is not None
    assert second.state.points_balance == 50


def test_a_row_key_is_found_in_the_archive_like_a_message_id() -> None:
    store = ArchivingStore(joined())
    batch = {"id": "b1", "row": 2, "suppress_notifications": True}
    store.handle(msg("stamps.adjust", {"delta": 1}, id="first-send", batch=batch))
    for n in range(APPLIED_IDS_LIMIT):
        store.handle(adjustment(n))
    assert {"first-send", "b1:2"} <= store.archive
    assert store.handle(msg("stamps.adjust", {"delta": 1}, id="second-send", batch=batch)).duplicate


def test_an_order_paid_long_ago_is_not_paid_again_under_a_new_message_id() -> None:
    store = ArchivingStore(joined())
    paid = {"order_id": "o-1", "total": "20.00", "currency": "EUR", "items": []}
    store.handle(msg("order.paid", paid, id="pay-1"))
    for n in range(APPLIED_IDS_LIMIT + 5):
        store.handle(adjustment(n))
    assert store.handle(msg("order.paid", paid, id="pay-1-resent")).duplicate
    refund = {"order_id": "o-1", "refund_id": "r-1", "amount": "5.00"}
    store.handle(msg("order.refunded", refund, id="refund-1"))
    for n in range(APPLIED_IDS_LIMIT + 5, 2 * APPLIED_IDS_LIMIT + 10):
        store.handle(adjustment(n))
    assert store.handle(msg("order.refunded", refund, id="refund-1-resent")).duplicate
