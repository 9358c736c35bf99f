"""Workflow ids that carry no personal data and make repeated notifications idempotent."""

from __future__ import annotations

import hashlib
import hmac
import uuid

HANDOFF_PREFIX = "handoff-"


def handoff_workflow_id(*, key: bytes, source_system: str, encounter_id: str) -> str:
    """`handoff-<uuid>` from a keyed hash: the same encounter always reaches the same workflow,
    and nobody can recover or guess the encounter id from the workflow id without the key."""
    message = f"{source_system.strip().lower()}\x1f{encounter_id.strip()}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return HANDOFF_PREFIX + str(uuid.UUID(bytes=digest[:16], version=5))


def contact_workflow_id(parent_id: str, sequence: int) -> str:
    return f"{parent_id}.c{sequence}"
