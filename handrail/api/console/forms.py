"""Which staff actions a transition accepts now, and how a console form becomes the command the
API's action takes (the same JSON body a client would send to
POST /api/transitions/{id}/actions/{action})."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel

from ...security.permissions import action_allowed
from ..routes.transitions import actions_of
from .web import Refused

HANDOFF_BOOKABLE = {"recorded", "awaiting_booking", "first_contact_scheduled"}
STEP_UP_BY_STAGE = {
    "awaiting_confirmation": ["confirm-proposal"],
    "awaiting_decision": ["decide"],
    "intensified": ["record-contact"],
    "awaiting_review": ["review", "record-contact"],
}


def available_actions(transition_id: str, kind: str, stage: str, status: str, role: str,
                      contact_in_progress: bool) -> list[str]:
    """The actions worth offering at this stage to this role; the workflow's validator still
    has the last word, and its refusal is shown as the API gives it."""
    if status == "closed" or stage == "closed":
        return []
    if kind == "step_up":
        offered = list(STEP_UP_BY_STAGE.get(stage, []))
    elif kind == "handoff":
        offered = ["confirm-details"]
        if stage in HANDOFF_BOOKABLE:
            offered.append("book")
        if contact_in_progress or stage == "first_contact_scheduled":
            offered.append("record-contact")
        if stage == "awaiting_supervisor_decision":
            offered.append("decide")
        offered += ["reassign", "close"]
    else:  # a pathway with no page of its own yet: every action it takes, as a generic form
        offered = [action for action in actions_of(transition_id) if action != "complete-task"]
    return [action for action in offered if action_allowed(role, action, kind)]


def generic_fields(model: type[BaseModel]) -> list[dict[str, Any]]:
    """A form for any command model, from its JSON schema: how a pathway's action gets a form
    before it has one of its own."""
    schema = model.model_json_schema()
    definitions = schema.get("$defs", {})
    fields = []
    for name, spec in schema.get("properties", {}).items():
        options = [s for s in spec.get("anyOf", [spec]) if s.get("type") != "null"] or [spec]
        chosen = options[0]
        if "$ref" in chosen:
            chosen = definitions.get(chosen["$ref"].removeprefix("#/$defs/"), {})
        kind = chosen.get("type", "string")
        widget = ("select" if "enum" in chosen else "checkbox" if kind == "boolean"
                  else "number" if kind == "integer" else "list" if kind == "array"
                  else "datetime" if chosen.get("format") == "date-time" else "text")
        fields.append({"name": name, "label": spec.get("title", name).capitalize(),
                       "widget": widget, "options": chosen.get("enum", []),
                       "required": name in schema.get("required", []),
                       "help": spec.get("description", "")})
    return fields


def generic_body(model: type[BaseModel], form: dict[str, str], time_zone: str) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for field in generic_fields(model):
        name, widget = field["name"], field["widget"]
        if widget == "checkbox":
            body[name] = form.get(name) == "yes"
        elif widget == "list":
            items = [item.strip() for item in form.get(name, "").replace("\n", ",").split(",")]
            if any(items):
                body[name] = [item for item in items if item]
        elif widget == "datetime":
            _optional(body, **{name: _local_time(form, name, time_zone)})
        else:
            _optional(body, **{name: _text(form, name)})
    return body


def _text(form: dict[str, str], name: str) -> str:
    return form.get(name, "").strip()


def _local_time(form: dict[str, str], name: str, time_zone: str) -> str | None:
    """A datetime-local field, read in the person's time zone, as ISO 8601 with its offset."""
    raw = _text(form, name)
    if not raw:
        return None
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    try:
        return datetime.fromisoformat(raw).replace(tzinfo=zone).isoformat()
    except ValueError:
        raise Refused(422, f"{name}: not a date and time ({raw!r})") from None


def _optional(body: dict[str, Any], **values: Any) -> dict[str, Any]:
    body.update({key: value for key, value in values.items() if value not in (None, "")})
    return body


def command_body(action: str, form: dict[str, str], *, transition_id: str, kind: str,
                 time_zone: str) -> dict[str, Any]:
    """The command's JSON body from the form's fields; validation is the command model's."""
    step_up = kind == "step_up"
    if kind not in ("handoff", "step_up"):
        known = actions_of(transition_id)
        if action in known:
            return generic_body(known[action][1], form, time_zone)
    if action == "confirm-details":
        return _optional({"consent_to_messages": form.get("consent_to_messages") == "yes"},
                         phone=_text(form, "phone"), note=_text(form, "note"))
    if action == "book":
        return _optional({"appointment_at": _local_time(form, "appointment_at", time_zone)},
                         location=_text(form, "location"), late_reason=_text(form, "late_reason"))
    if action == "record-contact":
        return _optional({"outcome": _text(form, "outcome")}, note=_text(form, "note"),
                         new_appointment_at=_local_time(form, "new_appointment_at", time_zone))
    if action == "reassign":
        return {"owner_id": _text(form, "owner_id"), "reason": _text(form, "reason")}
    if action == "decide" and step_up:
        return _optional({"decision": _text(form, "decision"), "reason": _text(form, "reason")},
                         lead_id=_text(form, "lead_id"),
                         contact_frequency=_text(form, "contact_frequency"))
    if action in ("decide", "review"):
        return {"decision": _text(form, "decision"), "reason": _text(form, "reason")}
    if action == "confirm-proposal":
        return {"confirm": form.get("confirm") == "yes", "reason": _text(form, "reason")}
    if action == "close":
        return {"reason": _text(form, "reason")}
    return {k: v for k, v in form.items() if k not in ("csrf_token", "back")}
