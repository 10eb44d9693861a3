"""The local Kafka's cluster id never reads as a command-line option to the storage tool."""

from __future__ import annotations

import base64

from stack.kafka import new_cluster_id


def test_an_id_that_would_start_with_a_dash_is_drawn_again() -> None:
    draws = iter([b"\xf8" + bytes(15), bytes(range(16))])  # the first encodes as "-..."
    assert base64.urlsafe_b64encode(b"\xf8" + bytes(15)).decode().startswith("-")
    cid = new_cluster_id(lambda: next(draws))
    assert cid == base64.urlsafe_b64encode(bytes(range(16))).decode().rstrip("=")


def test_ids_are_22_url_safe_characters_without_padding() -> None:
    for _ in range(200):
        cid = new_cluster_id()
        assert len(cid) == 22
        assert not cid.startswith("-")
        assert base64.urlsafe_b64decode(cid + "==")
