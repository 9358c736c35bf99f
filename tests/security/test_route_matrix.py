"""Every route of the app × every role × own team / another team.

For each route the test reads the permission it demands from its dependencies (`require(...)`
in api/deps.py), then checks: 401 without a token; 403 for every role outside
security/permissions.PERMISSIONS (and ACTION_ROLES for staff actions); 404 (or 403) for another
team's resource; and anything but 401/403/404/5xx for an allowed role on its own team's.
A route that is neither public by design nor listed here fails the test, so a new route cannot
be born unprotected or untested.
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from handrail.api.app import create_app
from handrail.config import Settings
from handrail.domain.tasks import Role
from handrail.security.permissions import PERMISSIONS, action_roles
from handrail.security.sessions import SAFE_METHODS, cookie_name, issue_session
from handrail.store.models import (
    ApiToken,
    OutboxMessage,
    Person,
    Staff,
    StaffTeam,
    Task,
    Team,
    Transition,
)
from handrail.store.tokens import hash_token, new_token
from handrail.store.types import utcnow

# Public by design: health probes, the docs, login itself, and the Twilio webhooks (which the
# Twilio engineer's tests hold to a valid X-Twilio-Signature instead of a token).
PUBLIC = {
    ("GET", "/healthz"), ("GET", "/readyz"),
    ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc"),
    ("POST", "/auth/login"), ("GET", "/auth/session"), ("POST", "/auth/logout"),
    ("GET", "/auth/oidc/login"), ("GET", "/auth/oidc/callback"),
    ("POST", "/webhooks/twilio/sms"), ("POST", "/webhooks/twilio/status"),
    ("POST", "/webhooks/twilio/voice"),
    ("OPTIONS", "/codec/decode"), ("OPTIONS", "/codec/encode"),  # CORS preflight carries no login
    # The console's login and logout pages, and its start page (a redirect by role, or to login).
    ("GET", "/console/"), ("GET", "/console/login"), ("POST", "/console/login"),
    ("POST", "/console/logout"),
}
# Console pages log in with the session cookie alone: without one they send the browser to the
# login page (303) instead of answering 401, and every unsafe form carries the CSRF token.
CONSOLE = "/console/"
# Dependencies that check a permission without being a `require(...)`.
PERMISSION_DEPENDENCIES = {"codec_user": "codec:use"}

OWN, OTHER = "own", "other"
TEAM_CODES = {OWN: "crisis-north", OTHER: "crisis-south"}  # as _seed names them


# --- the app and its routes -----------------------------------------------------------------


def _settings(data_dir: str) -> Settings:
    return Settings(
        data_dir=data_dir, id_key="matrix-key", policy="seconds", temporal_address="127.0.0.1:1",
        codec_keys=f"k1:{base64.b64encode(os.urandom(32)).decode()}",
        public_base_url="http://testserver",
    )


def _walk(routes) -> Iterator[Any]:
    for route in routes:
        if hasattr(route, "effective_route_contexts"):  # FastAPI's included-router wrapper
            yield from route.effective_route_contexts()
        else:
            yield route


def app_routes(app: FastAPI) -> dict[tuple[str, str], Any]:
    found = {}
    for route in _walk(app.routes):
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                found[(method, route.path)] = route
    return found


def permission_of(route: Any) -> set[str]:
    names: set[str] = set()

    def visit(dependant) -> None:
        for sub in dependant.dependencies:
            name = getattr(sub.call, "__name__", "")
            if name.startswith("require_"):
                names.add(name.removeprefix("require_").replace("_", ":", 1))
            elif name in PERMISSION_DEPENDENCIES:
                names.add(PERMISSION_DEPENDENCIES[name])
            visit(sub)

    visit(route.dependant)
    return names


ROUTES = app_routes(create_app(_settings(tempfile.mkdtemp(prefix="handrail-matrix-")),
                               engine=None, temporal_client=object()))


# --- a world of two teams ---------------------------------------------------------------------


class FakeHandle:
    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id

    async def execute_update(self, update: str, *, args: Any = (), **_: Any) -> Any:
        return {"update": update}

    async def signal(self, *_: Any, **__: Any) -> None:
        return None

    async def query(self, *_: Any, **__: Any) -> Any:
        raise RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b"")


class FakeServiceClient:
    async def check_health(self, **_: Any) -> bool:
        return True


class FakeTemporal:
    """Stands in for temporalio.client.Client: accepts starts, updates and signals."""

    def __init__(self) -> None:
        self.service_client = FakeServiceClient()
        self.started: set[str] = set()

    async def start_workflow(self, workflow: Any, arg: Any = None, *, id: str, **_: Any) -> FakeHandle:
        if id in self.started:
            raise WorkflowAlreadyStartedError(id, str(workflow))
        self.started.add(id)
        return FakeHandle(id)

    def get_workflow_handle(self, workflow_id: str, **_: Any) -> FakeHandle:
        return FakeHandle(workflow_id)


@dataclass
class World:
    tokens: dict[Role, str]
    staff_ids: dict[Role, int]
    transitions: dict[str, str]
    tasks: dict[str, int]
    messages: dict[str, int]
    step_ups: dict[str, str]
    person_id: int
    step_downs: dict[str, str] | None = None
    avoidances: dict[str, str] | None = None


def _seed(engine) -> World:
    now = datetime.now(UTC)
    with Session(engine, expire_on_commit=False) as session:
        teams = {OWN: Team(code="crisis-north", name="Crisis North"),
                 OTHER: Team(code="crisis-south", name="Crisis South")}
        session.add_all(teams.values())
        person = Person(given_name="Ash", family_name="Matrixperson", phone="+447700900999")
        session.add(person)
        session.flush()
        tokens, staff_ids = {}, {}
        for role in Role:
            staff = Staff(name=f"Test {role.value}", role=role.value)
            session.add(staff)
            session.flush()
            session.add(StaffTeam(staff_id=staff.id, team_id=teams[OWN].id))
            tokens[role] = new_token()
            session.add(ApiToken(staff_id=staff.id, token_hash=hash_token(tokens[role])))
            staff_ids[role] = staff.id
        transitions, tasks, messages, step_ups, step_downs, avoidances = {}, {}, {}, {}, {}, {}
        for side, team in teams.items():
            avoidances[side] = f"avoid-matrix-{side}"
            session.add(Transition(
                id=avoidances[side], kind="admission_avoidance", stage="intensive",
                person_id=person.id, team_id=team.id, policy_version="test",
                event_time=now - timedelta(hours=1),
            ))
            step_downs[side] = f"stepdown-matrix-{side}"
            session.add(Transition(
                id=step_downs[side], kind="step_down", stage="tapering", person_id=person.id,
                team_id=team.id, policy_version="test", event_time=now - timedelta(hours=1),
            ))
            step_ups[side] = f"stepup-matrix-{side}"
            session.add(Transition(
                id=step_ups[side], kind="step_up", stage="awaiting_decision", person_id=person.id,
                team_id=team.id, policy_version="test", event_time=now - timedelta(hours=1),
            ))
            transition_id = f"handoff-matrix-{side}"
            session.add(Transition(
                id=transition_id, kind="handoff", stage="awaiting_booking", person_id=person.id,
                team_id=team.id, policy_version="test", event_time=now - timedelta(hours=1),
            ))
            session.flush()
            task = Task(key=f"{transition_id}-book", transition_id=transition_id,
                        workflow_id=transition_id, kind="book_first_contact",
                        title="Book first contact", team_id=team.id)
            message = OutboxMessage(key=f"{transition_id}-reminder", kind="sms", to="+447700900999",
                                    body="Reminder: your appointment. Reply YES.",
                                    person_id=person.id, transition_id=transition_id,
                                    workflow_id=transition_id)
            session.add_all([task, message])
            session.flush()
            transitions[side], tasks[side], messages[side] = transition_id, task.id, message.id
        session.commit()
    return World(tokens, staff_ids, transitions, tasks, messages, step_ups, person.id, step_downs,
                 avoidances)


# --- how to call each protected route ----------------------------------------------------------

Request = tuple[str, dict[str, Any]]  # (url, keyword arguments for TestClient.request)
NOTIFICATION = {
    "source": "emergency_department", "source_system": "matrix-ed", "encounter_id": "ENC-MATRIX",
    "event_time": "2026-11-20T14:30:00+00:00",
    "person": {"identifiers": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": "MRN-MATRIX"}],
               "given_name": "Ash", "family_name": "Matrixperson", "phone": "+447700900999"},
    "summary": {"risk_factors": ["none recorded"], "safety_plan": "Call the crisis line"},
}
ACTION_BODIES: dict[str, Callable[[World], dict[str, Any]]] = {
    "confirm-details": lambda w: {"consent_to_messages": True},
    "book": lambda w: {"appointment_at": "2026-11-23T10:00:00+00:00"},
    "record-contact": lambda w: {"outcome": "attended"},
    "complete-task": lambda w: {"task_id": w.tasks[OWN]},
    "reassign": lambda w: {"owner_id": w.staff_ids[Role.transition_coordinator], "reason": "leave"},
    "decide": lambda w: {"decision": "continue_outreach", "reason": "one more try"},
    "close": lambda w: {"reason": "care transferred"},
}
# A step-up's actions, sent to a step-up transition (`decide` there takes the huddle's command).
STEP_UP_ACTION_BODIES: dict[str, Callable[[World], dict[str, Any]]] = {
    "confirm-proposal": lambda w: {"confirm": True, "reason": "agreed at the huddle"},
    "decide": lambda w: {"decision": "approve", "reason": "rising risk", "contact_frequency": "P3D",
                         "lead_id": w.staff_ids[Role.clinician]},
    "review": lambda w: {"decision": "continue", "reason": "not yet stable"},
    "record-contact": lambda w: {"outcome": "attended", "indicators": ["functional_decline"]},
    "complete-task": lambda w: {"task_id": w.tasks[OWN]},
}
STEP_UP = "stepup:"  # marks a step-up action in a case
# A step-down's actions, sent to a step-down transition.
STEP_DOWN_ACTION_BODIES: dict[str, Callable[[World], dict[str, Any]]] = {
    "adjust-taper": lambda w: {"kind": "slower", "reason": "agreed with the person"},
    "early-warning": lambda w: {"sign": "sleeping badly", "severity": "moderate"},
    "exit-plan": lambda w: {"signposting": ["recovery college"]},
    "close": lambda w: {"reason": "moved away, not engaging"},
}
STEP_DOWN = "stepdown:"  # marks a step-down action in a case
# An admission-avoidance episode's actions, sent to an episode.
AVOIDANCE_ACTION_BODIES: dict[str, Callable[[World], dict[str, Any]]] = {
    "decide": lambda w: {"decision": "approve", "rationale": "safe at home with daily visits"},
    "review": lambda w: {"decision": "continue", "reason": "not yet settled"},
    "report-risk": lambda w: {"rating": 4},
    "early-warning": lambda w: {"sign": "not sleeping", "severity": "moderate"},
    "record-contact": lambda w: {"outcome": "attended"},
    "record-carer": lambda w: {"name": "Jo Carer", "phone": "+447700900888", "relationship": "parent",
                               "consent": True, "consent_source": "verbal, home visit"},
    "withdraw-carer-consent": lambda w: {"note": "asked by phone"},
    "complete-task": lambda w: {"task_id": w.tasks[OWN]},
}
AVOIDANCE = "avoid:"  # marks an admission-avoidance action in a case
PATHWAY_PREFIXES = {STEP_UP: "step_up", STEP_DOWN: "step_down", AVOIDANCE: "admission_avoidance"}


def _actions_route(action: str) -> Callable[[World, str], Request]:
    if action.startswith(AVOIDANCE):
        name = action.removeprefix(AVOIDANCE)
        return lambda w, side: (f"/api/transitions/{w.avoidances[side]}/actions/{name}",
                                {"json": AVOIDANCE_ACTION_BODIES[name](w)})
    if action.startswith(STEP_DOWN):
        name = action.removeprefix(STEP_DOWN)
        return lambda w, side: (f"/api/transitions/{w.step_downs[side]}/actions/{name}",
                                {"json": STEP_DOWN_ACTION_BODIES[name](w)})
    if action.startswith(STEP_UP):
        name = action.removeprefix(STEP_UP)
        return lambda w, side: (f"/api/transitions/{w.step_ups[side]}/actions/{name}",
                                {"json": STEP_UP_ACTION_BODIES[name](w)})
    return lambda w, side: (f"/api/transitions/{w.transitions[side]}/actions/{action}",
                            {"json": ACTION_BODIES[action](w)})


# (method, path) → how to call it for a side; `None` side means the route lists, not one row.
CALLS: dict[tuple[str, str], Callable[[World, str], Request]] = {
    ("POST", "/api/handoffs"): lambda w, side: ("/api/handoffs", {"json": NOTIFICATION}),
    ("POST", "/api/intake/hl7"): lambda w, side: ("/api/intake/hl7", {
        "content": b"MSH|^~\\&|X|Y|Z|W|20261120||ADT^A03|1|P|2.5\r",
        "headers": {"content-type": "text/plain"}}),
    ("POST", "/api/intake/fhir"): lambda w, side: ("/api/intake/fhir", {"json": {"resourceType": "Bundle"}}),
    ("GET", "/api/intake/counts"): lambda w, side: ("/api/intake/counts", {}),
    ("GET", "/api/transitions"): lambda w, side: ("/api/transitions", {}),
    ("GET", "/api/transitions/{transition_id}"):
        lambda w, side: (f"/api/transitions/{w.transitions[side]}", {}),
    ("GET", "/api/tasks"): lambda w, side: ("/api/tasks?view=team", {}),
    ("POST", "/api/tasks/{task_id}/complete"):
        lambda w, side: (f"/api/tasks/{w.tasks[side]}/complete", {"json": {"note": "done"}}),
    ("POST", "/api/tasks/{task_id}/take"): lambda w, side: (f"/api/tasks/{w.tasks[side]}/take", {}),
    ("GET", "/console/work"): lambda w, side: ("/console/work", {}),
    ("POST", "/console/tasks/{task_id}/complete"):
        lambda w, side: (f"/console/tasks/{w.tasks[side]}/complete", {"data": {"note": "done"}}),
    ("POST", "/console/tasks/{task_id}/take"):
        lambda w, side: (f"/console/tasks/{w.tasks[side]}/take", {"data": {}}),
    ("GET", "/console/transitions"): lambda w, side: ("/console/transitions?overdue=yes", {}),
    ("GET", "/console/transitions/{transition_id}"):
        lambda w, side: (f"/console/transitions/{w.transitions[side]}", {}),
    ("GET", "/console/outbox"): lambda w, side: ("/console/outbox", {}),
    ("POST", "/console/outbox/{message_id}/reply"):
        lambda w, side: (f"/console/outbox/{w.messages[side]}/reply", {"data": {"text": "YES"}}),
    ("GET", "/console/admin"): lambda w, side: ("/console/admin", {}),
    ("GET", "/console/approvals"): lambda w, side: ("/console/approvals", {}),
    ("GET", "/console/reports"): lambda w, side: ("/console/reports", {}),
    ("GET", "/console/reports/assurance.csv"): lambda w, side: ("/console/reports/assurance.csv", {}),
    ("GET", "/api/outbox"): lambda w, side: ("/api/outbox", {}),
    ("POST", "/api/outbox/{message_id}/reply"):
        lambda w, side: (f"/api/outbox/{w.messages[side]}/reply", {"json": {"text": "YES"}}),
    ("POST", "/codec/decode"): lambda w, side: ("/codec/decode", {"json": {"payloads": []}}),
    ("POST", "/codec/encode"): lambda w, side: ("/codec/encode", {"json": {"payloads": []}}),
    ("POST", "/api/step-ups"): lambda w, side: ("/api/step-ups", {"json": {
        "person_id": w.person_id, "urgency": "urgent", "reason": "two missed sessions",
        "indicators": {"missed_sessions": 2, "functional_decline": True}}}),
    ("GET", "/api/capacity"): lambda w, side: ("/api/capacity", {}),
    ("POST", "/api/step-downs"): lambda w, side: ("/api/step-downs", {"json": {
        "person_id": w.person_id,
        "stabilization": {"confirmed": ["symptom_control", "functional_markers", "adherence",
                                        "safety_plan_reliability"]},
        "contingency": {"early_warning_signs": ["sleeping badly"],
                        "fast_track_route": "call the duty worker"}}}),
    ("POST", "/api/admission-avoidance"): lambda w, side: ("/api/admission-avoidance", {"json": {
        "person_id": w.person_id, "reason": "in crisis; could be supported at home",
        "proposed_thresholds": {"risk_rating_at_or_above": 7},
        "carer": {"name": "Jo Carer", "phone": "+447700900888", "relationship": "parent",
                  "consent": True, "consent_source": "verbal, at the assessment"}}}),
    ("GET", "/api/reports/outcomes"): lambda w, side: (
        f"/api/reports/outcomes?from=2026-01-01&to=2026-12-31&team={TEAM_CODES[side]}", {}),
    ("GET", "/api/reports/assurance"): lambda w, side: (
        f"/api/reports/assurance?week=2026-W48&team={TEAM_CODES[side]}", {}),
}
TEAM_SCOPED = {  # routes about one row of one team: another team's row must not be reachable
    ("GET", "/api/transitions/{transition_id}"), ("POST", "/api/tasks/{task_id}/complete"),
    ("POST", "/api/outbox/{message_id}/reply"),
    ("POST", "/api/transitions/{transition_id}/actions/{action}"),
    ("POST", "/api/tasks/{task_id}/take"), ("POST", "/console/tasks/{task_id}/take"),
    ("GET", "/console/transitions/{transition_id}"), ("POST", "/console/tasks/{task_id}/complete"),
    ("POST", "/console/outbox/{message_id}/reply"),
    ("POST", "/console/transitions/{transition_id}/actions/{action}"),
    ("GET", "/api/reports/outcomes"), ("GET", "/api/reports/assurance"),  # ?team= another team's
}
ACT = ("POST", "/api/transitions/{transition_id}/actions/{action}")
CONSOLE_ACT = ("POST", "/console/transitions/{transition_id}/actions/{action}")  # the same, as forms


def _as_form(body: dict[str, Any]) -> dict[str, str]:
    # What the console's form would post for the same command: a ticked box is "yes".
    return {key: "yes" if value is True else str(value) for key, value in body.items()
            if value is not False and not isinstance(value, list)}


def _cases() -> list[tuple[str, str, str | None]]:
    cases = []
    for method, path in sorted(ROUTES):
        if (method, path) in PUBLIC:
            continue
        if (method, path) in (ACT, CONSOLE_ACT):
            cases += [(method, path, action) for action in ACTION_BODIES]
            cases += [(method, path, STEP_UP + action) for action in STEP_UP_ACTION_BODIES]
            cases += [(method, path, STEP_DOWN + action) for action in STEP_DOWN_ACTION_BODIES]
            cases += [(method, path, AVOIDANCE + action) for action in AVOIDANCE_ACTION_BODIES]
        else:
            cases.append((method, path, None))
    return cases


CASES = _cases()


@pytest.fixture
def matrix(sqlite_engine, tmp_path):
    world = _seed(sqlite_engine)
    app = create_app(_settings(str(tmp_path)), engine=sqlite_engine, temporal_client=FakeTemporal())
    with TestClient(app, client=("203.0.113.20", 7000)) as client:
        yield client, world


def _make(case) -> Callable[[World, str], Request]:
    method, path, action = case
    if not action:
        return CALLS[(method, path)]
    if (method, path) == CONSOLE_ACT:
        def console(w: World, side: str) -> Request:
            url, kwargs = _actions_route(action)(w, side)
            return url.replace("/api/", CONSOLE, 1), {"data": _as_form(kwargs["json"])}
        return console
    return _actions_route(action)


def _console_call(client: TestClient, world: World, method: str, url: str, kwargs: dict[str, Any],
                  role: Role | None):
    settings = client.app.state.settings
    data = dict(kwargs.get("data", {}))
    client.cookies.clear()
    if role is not None:
        with Session(client.app.state.engine) as session:
            cookie, console = issue_session(settings, session.get(Staff, world.staff_ids[role]), utcnow())
        client.cookies.set(cookie_name(settings), cookie)
        if method not in SAFE_METHODS:
            data["csrf_token"] = console.csrf_token
    try:
        return client.request(method, url, data=data or None, headers=kwargs.get("headers"),
                              follow_redirects=False)
    finally:
        client.cookies.clear()


def _call(client: TestClient, world: World, case, side: str, role: Role | None):
    method, path, action = case
    url, kwargs = _make(case)(world, side)
    if path.startswith(CONSOLE):
        return _console_call(client, world, method, url, kwargs, role)
    kwargs = dict(kwargs)
    headers = dict(kwargs.pop("headers", {}))
    if role is not None:
        headers["Authorization"] = f"Bearer {world.tokens[role]}"
    return client.request(method, url, headers=headers, **kwargs)


def _allowed_roles(case) -> frozenset[Role]:
    method, path, action = case
    [permission] = permission_of(ROUTES[(method, path)])
    roles = PERMISSIONS[permission]
    if not action:
        return roles
    for prefix, pathway in PATHWAY_PREFIXES.items():
        if action.startswith(prefix):
            return roles & action_roles(action.removeprefix(prefix), pathway)
    return roles & action_roles(action)


def test_every_route_is_public_by_design_or_in_the_matrix():
    unknown = [key for key in ROUTES
               if key not in PUBLIC and key not in CALLS and key not in (ACT, CONSOLE_ACT)]
    assert unknown == [], f"routes with no entry in the route × role matrix: {unknown}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]} {c[1]}" + (f" {c[2]}" if c[2] else ""))
def test_route_answers_each_role_and_team_as_the_permission_table_says(matrix, case):
    client, world = matrix
    method, path, _ = case
    permissions = permission_of(ROUTES[(method, path)])
    assert len(permissions) == 1, f"{method} {path} must demand exactly one permission: {permissions}"
    [permission] = permissions
    assert permission in PERMISSIONS, f"{method} {path} demands an unknown permission {permission}"
    allowed = _allowed_roles(case)

    problems = []
    anonymous = _call(client, world, case, OWN, None)
    if path.startswith(CONSOLE):
        if (anonymous.status_code, anonymous.headers.get("location", "")[:15]) != (303, "/console/login?"):
            problems.append(f"no session: {anonymous.status_code}, expected 303 to the login page")
    elif anonymous.status_code != 401:
        problems.append(f"no token: {anonymous.status_code}, expected 401")
    for role in Role:
        answer = _call(client, world, case, OWN, role)
        if role not in allowed:
            if answer.status_code != 403:
                problems.append(f"{role.value}: {answer.status_code}, expected 403")
            continue
        if answer.status_code in (401, 403, 404) or answer.status_code >= 500:
            problems.append(f"{role.value} on own team: {answer.status_code} {answer.text[:200]}")
        if (method, path) in TEAM_SCOPED:
            other = _call(client, world, case, OTHER, role)
            if other.status_code not in (403, 404):
                problems.append(f"{role.value} on another team: {other.status_code}, expected 404")
    assert problems == [], f"{method} {path} ({permission}):\n  " + "\n  ".join(problems)


# The codec changes nothing and answers only the Temporal UI origin, which cannot send a token.
CSRF_EXEMPT = {("POST", "/codec/decode"), ("POST", "/codec/encode")}


@pytest.mark.parametrize("case", [c for c in CASES if c[0] not in SAFE_METHODS
                                  and (c[0], c[1]) not in CSRF_EXEMPT],
                         ids=lambda c: f"{c[0]} {c[1]}" + (f" {c[2]}" if c[2] else ""))
def test_console_sessions_need_the_csrf_token_on_every_unsafe_route(matrix, sqlite_engine, case):
    client, world = matrix
    settings = client.app.state.settings
    role = sorted(_allowed_roles(case))[0]
    with Session(sqlite_engine) as session:
        cookie, console = issue_session(settings, session.get(Staff, world.staff_ids[role]), utcnow())
    client.cookies.set(cookie_name(settings), cookie)

    method, path, action = case
    url, kwargs = _make(case)(world, OWN)
    headers = dict(kwargs.get("headers", {}))
    rest = {k: v for k, v in kwargs.items() if k != "headers"}
    without = client.request(method, url, headers=headers, **rest)
    forged = client.request(method, url, headers={**headers, "X-CSRF-Token": "forged"}, **rest)
    with_token = client.request(method, url, headers={**headers, "X-CSRF-Token": console.csrf_token},
                                **rest)

    assert (without.status_code, forged.status_code) == (403, 403)
    assert "CSRF" in without.text  # the API's JSON detail, or the console's page
    assert with_token.status_code not in (401, 403, 404) and with_token.status_code < 500


def test_lists_show_only_the_users_teams(matrix):
    client, world = matrix
    auth = {"Authorization": f"Bearer {world.tokens[Role.supervisor]}"}

    transitions = client.get("/api/transitions", headers=auth).json()
    tasks = client.get("/api/tasks?view=team", headers=auth).json()
    outbox = client.get("/api/outbox", headers=auth).json()

    listed = str(transitions) + str(tasks) + str(outbox)
    assert world.transitions[OWN] in listed
    assert world.transitions[OTHER] not in listed


def test_admins_manage_but_never_read_clinical_records():
    clinical_reads = ("transitions:read", "tasks:read", "outbox:read", "codec:use", "reports:read")
    for permission in clinical_reads:
        assert Role.admin not in PERMISSIONS[permission], permission
