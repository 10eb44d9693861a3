"""Secrets the local stack generates so the demo and tests work without any set-up."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from settings import Settings


def ensure_reward_code_key(settings: Settings) -> Path:
    """Write a random reward code key into the stack dir unless one is there; return its path.

    Only for the local stack: production sets ``LOYALTY_REWARD_CODE_KEY`` from its secret store.
    The key is never rotated here: a new key would give every existing grant a new code.
    """
    path = settings.reward_code_key_file
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two `stack up` at once never overwrite each other's key; 0o600: owner only.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    return path
