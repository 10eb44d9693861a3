"""Group commands: one copy of a ``tier.manage`` with ``group_id`` per member of the group.

The members are streamed from a cursor (no whole group in memory) and the copies published in
chunks onto the tier-commands topic, keyed by the member, so each is applied by the worker that
owns that customer. A copy's id derives from the group command's id and the member, so a
redelivered group command publishes the same ids and the rules treat the repeats as duplicates.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from models.messages import ManageTier
from models.outputs import MAX_ID_LENGTH, derive_id
from store.repository import CustomerRepository
from topics.codec import encode_key, to_json
from topics.names import Topics
from workers.outbox import Outgoing

FANOUT_CHUNK = 500
"""Member commands produced per round trip while a group command fans out."""


def member_command_id(command_id: str, member: str) -> str:
    """Return the id of a group command's copy for one member (deterministic, <= 200 chars)."""
    readable = f"{command_id}@{member}"
    return readable if len(readable) <= MAX_ID_LENGTH else derive_id(command_id, "member", member)


def member_command(command: ManageTier, member: str) -> ManageTier:
    """Return the copy of a group command for one member: its own id and key, no group."""
    return command.model_copy(
        update={
            "id": member_command_id(command.id, member),
            "customer_id": member,
            "data": command.data.model_copy(update={"group_id": None}),
        }
    )


async def fan_out_once(
    repository: CustomerRepository,
    command: ManageTier,
    topics: Topics,
    publish: Callable[[Sequence[Outgoing]], Awaitable[None]],
) -> int:
    """Stream the group's members from a cursor and publish their copies; return how many."""
    group_id = command.data.group_id
    if group_id is None:
        raise ValueError(f"{command.id} is not a group command")
    chunk: list[Outgoing] = []
    members = 0
    async for member in repository.group_members(group_id):
        copy = member_command(command, member)
        chunk.append(Outgoing(topics.tier_commands, encode_key(member), to_json(copy)))
        members += 1
        if len(chunk) >= FANOUT_CHUNK:
            await publish(chunk)
            chunk = []
    if chunk:
        await publish(chunk)
    return members
