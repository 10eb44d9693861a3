"""The store's part of ``customer.forget``: what the pure rules cannot erase themselves.

The rules blank email and names in the state. The worker, in the batch that forgets a
customer, also (1) blanks the notes of the activity entries that batch writes, and (2) before
it saves the batch, blanks the notes of the customer's stored activity and drops their parked
messages. The erasure runs before the save so that a crash in between is safe: the customer is
not saved as forgotten, the offsets are not committed, the ``customer.forget`` comes again and
erases again (both steps are idempotent). After the save the customer refuses every message
(``customer_forgotten``), so nothing with notes can be added later. The email lookup follows
the document itself (an empty email unsets ``email_key`` in the same update).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from store.documents import ERASED_ACTIVITY_FIELDS
from store.repository import ActivityRecord, CustomerWrite


def newly_forgotten(write: CustomerWrite) -> bool:
    """Return whether this write is the one that forgets the customer."""
    before = write.loaded.state.status if write.loaded is not None else None
    return write.state.status == "forgotten" and before != "forgotten"


def scrub(writes: Sequence[CustomerWrite]) -> tuple[list[CustomerWrite], list[str]]:
    """Return the writes with the forgotten customers' notes blanked, and those customers."""
    erased = dict.fromkeys(ERASED_ACTIVITY_FIELDS)
    out: list[CustomerWrite] = []
    forgotten: list[str] = []
    for write in writes:
        if not newly_forgotten(write):
            out.append(write)
            continue
        forgotten.append(write.customer_id)
        activity = tuple(
            ActivityRecord(entry=r.entry.model_copy(update=erased), batch_id=r.batch_id, row=r.row)
            for r in write.activity
        )
        out.append(replace(write, activity=activity))
    return out, forgotten
