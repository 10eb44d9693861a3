"""Bytes <-> messages: the wire format of every topic and the one registry of message types.

The domain (``models/``) defines the messages as pydantic models and lists them once, in the
``InputMessage`` and ``OutputMessage`` unions; everything here is derived from those unions.
Values are UTF-8 JSON objects (the envelope), keys are the customer id in UTF-8.
``parse_message`` turns raw input into one ``InputMessage`` or raises a single
``MessageError`` whose text tells the sender what to fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, get_args

from pydantic import BaseModel, TypeAdapter, ValidationError

from models.messages import InputMessage
from models.outputs import OutputMessage
from models.values import Envelope, JsonFloat, explain


def _classes(union: Any) -> tuple[type[BaseModel], ...]:
    """Return the member classes of an ``Annotated[A | B | ..., discriminator]`` union."""
    members = get_args(get_args(union)[0])
    return tuple(member for member in members if issubclass(member, BaseModel))


def message_type(model: type[BaseModel]) -> str:
    """Return the ``type`` tag a message class carries (``"order.paid"``)."""
    return str(model.model_fields["type"].default)


INPUT_CLASSES: tuple[type[BaseModel], ...] = _classes(InputMessage)
"""Every input message class, in the order the domain lists them."""
OUTPUT_CLASSES: tuple[type[BaseModel], ...] = _classes(OutputMessage)
"""Every output message class the rules emit."""
INPUT_TYPES: tuple[str, ...] = tuple(message_type(cls) for cls in INPUT_CLASSES)
"""The ``type`` tags of every input message: the registry the decoder checks against."""
OUTPUT_TYPES: tuple[str, ...] = tuple(message_type(cls) for cls in OUTPUT_CLASSES)

_EXPIRY_KINDS = frozenset({"fixed_date", "duration", "after_field_date", "duration_from_field"})
_TAGS = frozenset(INPUT_TYPES) | _EXPIRY_KINDS
_INPUT_ADAPTER: TypeAdapter[InputMessage] = TypeAdapter(InputMessage)
_OUTPUT_ADAPTER: TypeAdapter[OutputMessage] = TypeAdapter(OutputMessage)


class MessageError(ValueError):
    """A message that cannot be accepted; ``code`` is stable, ``message`` says what to fix."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


MAX_INT_DIGITS = 40
"""JSON integers longer than this are refused before Python converts them (no bound of the
contract needs more, and converting thousands of digits is slow or raises ValueError)."""
MAX_DEPTH = 32
"""Nesting deeper than this is refused: no message of the contract nests more than 5 levels."""
_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_constant(name: str) -> Any:
    raise MessageError("invalid_json", f"{name} is not a JSON number; send a finite number")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise MessageError(
            "invalid_json", f"a number with {len(text)} digits is too large; no field takes one"
        )
    return int(text)


def _check_strings(value: Any, depth: int = 0) -> None:
    """Refuse nesting deeper than ``MAX_DEPTH`` and strings that are not valid Unicode."""
    # \ud800 escapes are valid JSON but no UTF-8 text: they would fail later, on the way out.
    if depth > MAX_DEPTH:
        raise MessageError("invalid_json", f"message nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise MessageError(
                "invalid_encoding",
                "message holds a lone surrogate escape (like \\ud800), which is not Unicode text",
            )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_strings(key, depth + 1)
            _check_strings(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_strings(item, depth + 1)


def _decode(raw: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        value: Any = dict(raw)
    else:
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise MessageError("invalid_encoding", f"message is not UTF-8: {exc}") from None
        try:
            value = json.loads(
                raw,
                parse_float=JsonFloat,
                parse_int=_parse_int,
                parse_constant=_refuse_constant,
            )
        except json.JSONDecodeError as exc:
            raise MessageError("invalid_json", f"message is not valid JSON: {exc}") from None
        except RecursionError:
            raise MessageError(
                "invalid_json", f"message nests deeper than {MAX_DEPTH} levels"
            ) from None
    if not isinstance(value, dict):
        raise MessageError("invalid_json", "message must be one JSON object (the envelope)")
    _check_strings(value)
    return value


def parse_message(raw: bytes | str | Mapping[str, Any]) -> InputMessage:
    """Parse and validate one input message, or raise ``MessageError`` saying what to fix."""
    value = _decode(raw)
    kind = value.get("type")
    if kind not in INPUT_TYPES:
        got = "no type" if kind is None else f"unknown type {kind!r}"
        raise MessageError("unknown_type", f"type: {got}; known types: {', '.join(INPUT_TYPES)}")
    try:
        return _INPUT_ADAPTER.validate_python(value)
    except ValidationError as exc:
        raise MessageError("invalid_message", explain(exc, skip=_TAGS)) from None


def parse_output(raw: bytes | str) -> OutputMessage:
    """Parse one output message (for consumers and tests); raises ``MessageError``."""
    try:
        return _OUTPUT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        raise MessageError("invalid_message", explain(exc)) from None


def to_json(model: BaseModel) -> bytes:
    """Serialise a message as the contract's JSON: money as strings, timestamps RFC 3339 UTC."""
    return model.model_dump_json().encode("utf-8")


def encode_key(customer_id: str) -> bytes:
    """Return the Kafka key of a message about this customer."""
    return customer_id.encode("utf-8")


def encode(message: Envelope | BaseModel) -> bytes:
    """Serialise an input or output message as its topic's value."""
    return to_json(message)
