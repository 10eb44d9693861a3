"""Reward codes: what a customer shows at checkout to use a grant.

A code is a keyed hash (HMAC-SHA256) of the customer id and the grant id, written in the
program's code format. So the same grant always gets the same code (a replay rebuilds the same
codes), and nobody without the key can compute or guess a valid one: the format must carry at
least ``MIN_CODE_BITS`` bits of randomness, about one chance in 10^15 per guess.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from typing import Annotated

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from models.values import ConfigModel

DEFAULT_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
"""31 symbols: digits and capitals without the look-alikes 0/O and 1/I/L."""
DEFAULT_LENGTH = 12
MIN_CODE_BITS = 50
"""A code format must give at least this many bits (10 symbols of 31 give 49.5: too few)."""
MAX_LENGTH = 32
LOOK_ALIKES = ("0O", "1IL")
"""Groups of symbols read alike; an alphabet may hold at most one symbol of each group."""
_SYMBOL = re.compile(r"[A-Z0-9]+")
_PREFIX = re.compile(r"[A-Z0-9-]*")
_SEPARATORS = re.compile(r"\s+")

Prefix = Annotated[str, Field(max_length=20)]
Length = Annotated[int, Field(ge=1, le=MAX_LENGTH)]


def _alphabet_problem(alphabet: str) -> str | None:
    if not _SYMBOL.fullmatch(alphabet):
        return "alphabet must be capital letters A-Z and digits only (codes are read case-blind)"
    if len(set(alphabet)) != len(alphabet):
        repeated = sorted({c for c in alphabet if alphabet.count(c) > 1})
        return f"alphabet repeats {''.join(repeated)}; list each symbol once"
    if len(alphabet) < 2:
        return "alphabet needs at least 2 symbols"
    for group in LOOK_ALIKES:
        clash = [c for c in group if c in alphabet]
        if len(clash) > 1:
            return f"alphabet holds look-alike symbols {' and '.join(clash)}; keep one at most"
    return None


class CodeFormatOverride(ConfigModel):
    """A reward's own code format: any of prefix, length, alphabet; the rest from the program."""

    prefix: Prefix | None = None
    length: Length | None = None
    alphabet: str | None = None


class CodeFormat(ConfigModel):
    """How codes look: ``prefix`` then ``length`` symbols drawn from ``alphabet``."""

    prefix: Prefix = ""
    length: Length = DEFAULT_LENGTH
    alphabet: str = DEFAULT_ALPHABET

    @model_validator(mode="after")
    def _strong_enough(self) -> CodeFormat:
        if not _PREFIX.fullmatch(self.prefix):
            raise PydanticCustomError(
                "code_prefix", "prefix may hold only capital letters, digits and '-'", {}
            )
        if (problem := _alphabet_problem(self.alphabet)) is not None:
            raise PydanticCustomError("code_alphabet", problem, {})
        if self.bits < MIN_CODE_BITS:
            needed = math.ceil(MIN_CODE_BITS / math.log2(len(self.alphabet)))
            raise PydanticCustomError(
                "code_too_weak",
                "{length} symbols of a {size}-symbol alphabet give {bits} bits, fewer than "
                "the {minimum} that keep codes unguessable; use a length of at least {needed}",
                {
                    "length": self.length,
                    "size": len(self.alphabet),
                    "bits": f"{self.bits:.1f}",
                    "minimum": MIN_CODE_BITS,
                    "needed": needed,
                },
            )
        return self

    @property
    def bits(self) -> float:
        """Bits of randomness in one code (the prefix carries none)."""
        return self.length * math.log2(len(self.alphabet))

    def merged(self, override: CodeFormatOverride | None) -> CodeFormat:
        """Return this format with a reward's own settings applied (validated again)."""
        if override is None:
            return self
        changes = override.model_dump(exclude_none=True)
        return CodeFormat.model_validate({**self.model_dump(), **changes})


def reward_code(key: str, customer_id: str, grant_id: str, fmt: CodeFormat) -> str:
    """Return the code of a grant: HMAC-SHA256 of customer and grant id, in ``fmt``."""
    size = len(fmt.alphabet)
    # 128 spare bits make the modulo bias of the base conversion negligible (< 2^-128).
    wanted = math.ceil((fmt.length * math.log2(size) + 128) / 8)
    message = f"{customer_id}\x1f{grant_id}".encode()
    stream = b""
    block = 0
    while len(stream) < wanted:
        counter = block.to_bytes(4, "big")
        stream += hmac.new(key.encode(), counter + message, hashlib.sha256).digest()
        block += 1
    number = int.from_bytes(stream[:wanted], "big")
    symbols = []
    for _ in range(fmt.length):
        number, index = divmod(number, size)
        symbols.append(fmt.alphabet[index])
    return fmt.prefix + "".join(symbols)


def normalize_code(text: str) -> str:
    """Return a code as typed at a checkout in the form it was issued (case and spaces ignored)."""
    return _SEPARATORS.sub("", text).upper()
