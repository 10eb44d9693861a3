"""Which store errors the worker retries (an outage) and which it raises (a refusal, a bug)."""

from __future__ import annotations

import pytest
from bson.errors import InvalidBSON
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    DocumentTooLarge,
    DuplicateKeyError,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteConcernError,
)

from store.errors import is_permanent


def _bulk(*codes: int) -> BulkWriteError:
    errors = [{"index": n, "code": code, "errmsg": "x"} for n, code in enumerate(codes)]
    return BulkWriteError({"writeErrors": errors})


@pytest.mark.parametrize(
    "error",
    [
        AutoReconnect("connection reset"),
        NetworkTimeout("timed out"),
        ServerSelectionTimeoutError("no server"),
        NotPrimaryError("not primary"),
        WriteConcernError("waiting for replication timed out", 64, {}),
        OperationFailure("interrupted at shutdown", 11600),
        OperationFailure("unauthorized", 13),  # a setting to fix; the worker waits for it
        DuplicateKeyError("E11000", 11000),
        _bulk(11000),
        ConnectionRefusedError(),
        TimeoutError(),
    ],
    ids=type,
)
def test_an_outage_or_an_unknown_driver_error_is_retried(error: Exception) -> None:
    assert not is_permanent(error)


@pytest.mark.parametrize(
    "error",
    [
        DocumentTooLarge("BSON document too large"),
        InvalidBSON("bad bytes"),
        OperationFailure("BSONObj size: 17000000 is invalid", 10334),
        OperationFailure("Resulting document after update is larger than 16777216", 17419),
        OperationFailure("The dollar ($) prefixed field is not valid for storage", 52),
        _bulk(10334),
        _bulk(11000, 17419),  # one refused write fails the whole bulk every time
        KeyError("version"),  # a bug: the same call fails the same way again
        TypeError("unsupported operand"),
    ],
    ids=type,
)
def test_a_refused_write_or_a_bug_is_not(error: Exception) -> None:
    assert is_permanent(error)
