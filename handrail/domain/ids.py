"""Workflow ids that carry no personal data and make repeated notifications idempotent."""

from __future__ import annotations

import hashlib
import hmac
import uuid

HANDOFF_PREFIX = "handoff-"
STEP_UP_PREFIX = "stepup-"
STEP_DOWN_PREFIX = "stepdown-"
AVOIDANCE_PREFIX = "avoid-"
# The fast-track step-up of a step-down's early warning: derived, so a retry starts no second.
_FAST_TRACK_NAMESPACE = uuid.UUID("0b7d3c9e-5a41-4f6e-9d2b-7c1e8a6f4d23")


def handoff_workflow_id(*, key: bytes, source_system: str, encounter_id: str) -> str:
    """`handoff-<uuid>` from a keyed hash: the same encounter always reaches the same workflow,
    and nobody can recover or guess the encounter id from the workflow id without the key."""
    message = f"{source_system.strip().lower()}\x1f{encounter_id.strip()}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return HANDOFF_PREFIX + str(uuid.UUID(bytes=digest[:16], version=5))


def step_up_workflow_id(request_uuid: uuid.UUID) -> str:
    """`stepup-<uuid>`: nothing of the person in it."""
    return STEP_UP_PREFIX + str(request_uuid)


def requested_step_up_workflow_id(*, key: bytes, person_id: int, earlier_step_ups: int) -> str:
    """A clinician's request: the same for a person until a step-up of theirs is recorded, so
    a request repeated before the first one's row exists reaches the same workflow (keyed, so
    the id cannot be computed from the person's number without the key)."""
    message = f"step-up\x1f{person_id}\x1f{earlier_step_ups}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return step_up_workflow_id(uuid.UUID(bytes=digest[:16], version=5))


def requested_step_down_workflow_id(*, key: bytes, person_id: int, earlier_step_downs: int) -> str:
    """`stepdown-<uuid>`, keyed like a requested step-up: a request repeated before the first
    one is recorded reaches the same workflow."""
    message = f"step-down\x1f{person_id}\x1f{earlier_step_downs}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return STEP_DOWN_PREFIX + str(uuid.UUID(bytes=digest[:16], version=5))


def requested_avoidance_workflow_id(*, key: bytes, person_id: int, earlier_episodes: int) -> str:
    """`avoid-<uuid>`, keyed like a requested step-up: a request repeated before the first one
    is recorded reaches the same workflow."""
    message = f"admission-avoidance\x1f{person_id}\x1f{earlier_episodes}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return AVOIDANCE_PREFIX + str(uuid.UUID(bytes=digest[:16], version=5))


def fast_track_step_up_id(step_down_id: str, warning: int) -> str:
    return step_up_workflow_id(uuid.uuid5(_FAST_TRACK_NAMESPACE, f"{step_down_id}:{warning}"))


def contact_workflow_id(parent_id: str, sequence: int) -> str:
    return f"{parent_id}.c{sequence}"
