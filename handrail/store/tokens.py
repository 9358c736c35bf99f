"""API tokens: shown once when made, stored only as a SHA-256 hash.

A token is 256 bits of randomness, so an unsalted fast hash is the right tool (a slow password
hash buys nothing against a search space of 2**256 and would slow every request)."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "hr_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
