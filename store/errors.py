"""Which store errors are worth retrying: an outage passes, a refused write or a bug does not.

The worker retries every store call until it succeeds, so that nothing is lost while MongoDB is
down (workers/health.py). That is right for an outage, a failover or a timeout, and wrong for an
error that the same call will meet again, forever: a document the server refuses (too large, a
field it cannot store) or a bug in the code around the call. Retrying those stalls the
partition for good; raised instead, they reach the batch's record-by-record redo
(workers/batch.py), which sets aside only the record that fails, on the dead-letter topic.

When in doubt an error is transient: retrying a permanent error stalls (visibly: readiness is
false and every attempt is logged), while giving up on a transient one would dead-letter
messages that were fine.
"""

from __future__ import annotations

from bson.errors import BSONError
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    OperationFailure,
    PyMongoError,
    WriteConcernError,
)

REFUSED_WRITE_CODES = frozenset(
    {
        2,  # BadValue
        9,  # FailedToParse
        14,  # TypeMismatch
        28,  # PathNotViable
        40,  # ConflictingUpdateOperators
        52,  # DollarPrefixedFieldName
        56,  # EmptyFieldName
        57,  # DottedFieldName
        66,  # ImmutableField
        10334,  # BSONObjectTooLarge
        17280,  # KeyTooLong
        17419,  # a document that would grow past the maximum size
        17420,  # an upsert past the maximum size
    }
)
"""Server error codes that mean "this write can never succeed as it is"."""


def is_permanent(exc: BaseException) -> bool:
    """Whether retrying the store call that raised ``exc`` can never succeed."""
    if isinstance(exc, BSONError):
        return True  # refused before it left the client (InvalidDocument, DocumentTooLarge)
    if isinstance(exc, ConnectionFailure | WriteConcernError | OSError | TimeoutError):
        return False  # outage, failover, timeout
    if isinstance(exc, BulkWriteError):
        codes = {error.get("code") for error in exc.details.get("writeErrors", ())}
        return bool(codes & REFUSED_WRITE_CODES)  # the same write fails again in any retry
    if isinstance(exc, OperationFailure):
        return exc.code in REFUSED_WRITE_CODES
    # Any other driver error: an outage until proven otherwise. Anything else is a bug.
    return not isinstance(exc, PyMongoError)
