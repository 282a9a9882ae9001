"""The shared secret of a driver's channel.

The driver makes a random token per job and hands it to its tasks with their closure; every
message a task sends carries it, and the driver drops any message without it. So a process
that merely reaches the driver's port (any local user, any host on a cluster's network)
can neither inject results nor take work.
"""

from __future__ import annotations

import hmac
import secrets

TOKEN_FIELD = "token"


def new_token() -> str:
    """32 hex digits from the OS's secure random source."""
    return secrets.token_hex(16)


def take_token(message, token: str) -> bool:
    """Remove ``token`` from a decoded message; True only if it is a dict that carried this token."""
    if not isinstance(message, dict):
        return False
    given = message.pop(TOKEN_FIELD, None)
    # compared in constant time, as bytes: compare_digest refuses non-ASCII str
    return isinstance(given, str) and hmac.compare_digest(given.encode(), token.encode())
