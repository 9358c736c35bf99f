"""Twilio without Twilio: Prism serving Twilio's own OpenAPI description, a store with one
synthetic person reached by one transition, and a Temporal stand-in that records signals.

Prism needs `../shared/twilio/twilio_api_v2010.json` (beside the project) and `npm ci` (the
pinned @stoplight/prism-cli in package.json). Where either is missing the contract tests skip
with the reason, except under CI=true with ../shared present, where a missing Prism fails.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session
from temporalio.service import RPCError, RPCStatusCode

from handrail.channels.twilio import RedirectingHttpClient
from handrail.store.models import Contact, OutreachAttempt, Person, Team, Transition

REPO_ROOT = Path(__file__).resolve().parents[2]
TWILIO_SPEC = REPO_ROOT.parent / "shared" / "twilio" / "twilio_api_v2010.json"
PRISM = REPO_ROOT / "node_modules" / ".bin" / "prism"

ACCOUNT_SID = "AC" + "1f" * 16
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
FROM_NUMBER = "+15005550006"
PERSON_PHONE = "+447700900123"  # Ofcom's drama range: never a real person
APPOINTMENT_AT = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)

# Twilio's error bodies for the refusals Handrail must handle (Twilio's documented wording).
TWILIO_ERRORS = {
    "invalid_number": {"code": 21211, "message": "Invalid 'To' Phone Number: +4477009001XX",
                       "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400},
    "unsubscribed": {"code": 21610, "message": "Attempt to send to unsubscribed recipient",
                     "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400},
    "not_mobile": {"code": 21614, "message": "'To' number is not a valid mobile number",
                   "more_info": "https://www.twilio.com/docs/errors/21614", "status": 400},
}
CREATE_PATHS = (
    "/2010-04-01/Accounts/{AccountSid}/Messages.json",
    "/2010-04-01/Accounts/{AccountSid}/Calls.json",
)


def patched_spec(original: dict) -> dict:
    """Twilio's description defines no error answers: add a 400 with Twilio-style bodies as
    named examples, chosen per request with `Prefer: code=400, example=NAME`. And a 422 for a
    request the contract does not allow, so that Prism keeps answering such a request with a
    plain 422 (with only a 400 defined it would answer with the first Twilio error instead)."""
    spec = copy.deepcopy(original)
    for path in CREATE_PATHS:
        spec["paths"][path]["post"]["responses"]["422"] = {
            "description": "Prism: the request breaks the contract",
            "content": {"application/json": {"schema": {"type": "object"}, "examples": {
                "contract_violation": {"value": {"message": "request breaks the contract",
                                                 "status": 422}}}}},
        }
        spec["paths"][path]["post"]["responses"]["400"] = {
            "description": "Twilio refuses the request",
            "content": {"application/json": {
                "schema": {"type": "object", "properties": {
                    "code": {"type": "integer"}, "message": {"type": "string"},
                    "more_info": {"type": "string"}, "status": {"type": "integer"}}},
                "examples": {name: {"value": body} for name, body in TWILIO_ERRORS.items()},
            }},
        }
    return spec


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prism_missing_reason() -> str | None:
    if not TWILIO_SPEC.is_file():
        return f"Twilio's OpenAPI description is not at {TWILIO_SPEC} (../shared is absent)"
    if not PRISM.exists():
        reason = f"Prism is not installed at {PRISM}: run `npm ci` in {REPO_ROOT}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI is set, ../shared exists, but {reason}", pytrace=False)
        return reason
    return None


@pytest.fixture(scope="session")
def prism_url(tmp_path_factory) -> str:
    """A stand-in Twilio: Prism mocking the patched description on a free loopback port."""
    reason = _prism_missing_reason()
    if reason:
        pytest.skip(reason)
    spec_file = tmp_path_factory.mktemp("twilio") / "twilio_api_v2010_with_errors.json"
    spec_file.write_text(json.dumps(patched_spec(json.loads(TWILIO_SPEC.read_text()))))
    port = _free_port()
    log_file = spec_file.with_suffix(".log").open("w")
    server = subprocess.Popen(
        [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), str(spec_file)],
        stdout=log_file, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/2010-04-01/Accounts.json", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # answering (401 without credentials): up
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"Prism did not start: see {log_file.name}")
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log_file.close()


class RecordingHttpClient(RedirectingHttpClient):
    """The redirecting client, keeping each request Handrail made and, when a test asks for a
    Twilio refusal, sending Prism's `Prefer` header for the named example."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url, timeout=10)
        self.requests: list[dict] = []
        self.prefer_error: str | None = None

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None,
                allow_redirects=False):
        headers = dict(headers or {})
        if self.prefer_error:
            headers["Prefer"] = f"code=400, example={self.prefer_error}"
        response = super().request(method, url, params=params, data=data, headers=headers,
                                   auth=auth, timeout=timeout, allow_redirects=allow_redirects)
        self.requests.append({"method": method, "url": url, "data": dict(data or {}),
                              "status": response.status_code})
        return response


@dataclass
class Reached:
    """The synthetic person, the transition reaching out to them, and its contact."""

    person_id: int
    transition_id: str
    contact_id: str
    workflow_id: str


@pytest.fixture
def reached(sqlite_engine) -> Reached:
    with Session(sqlite_engine, expire_on_commit=False) as session:
        team = Team(code="crisis-north", name="Crisis North")
        person = Person(given_name="Sam", family_name="Synthetic", phone=PERSON_PHONE,
                        time_zone="Europe/London", consent_to_messages=True,
                        consent_recorded_at=datetime(2026, 11, 22, 9, tzinfo=UTC),
                        consent_source="confirm-details")
        session.add_all([team, person])
        session.flush()
        transition_id = "handoff-00000000-0000-5000-8000-000000000001"
        session.add(Transition(id=transition_id, kind="handoff", stage="first_contact_scheduled",
                               person_id=person.id, team_id=team.id, policy_version="test"))
        session.flush()
        contact_id = f"{transition_id}.c1"
        session.add(Contact(id=contact_id, transition_id=transition_id, sequence=1,
                            purpose="first_contact", appointment_at=APPOINTMENT_AT,
                            not_before=APPOINTMENT_AT, due_at=APPOINTMENT_AT))
        session.commit()
        return Reached(person.id, transition_id, contact_id, contact_id)


def add_attempt(engine, reached: Reached, *, key: str, channel: str = "sms", status: str = "queued",
                provider_ref: str | None = None, workflow_id: str | None = None,
                created_at: datetime | None = None) -> int:
    """An outreach attempt row as the send activity writes it before calling the channel."""
    with Session(engine, expire_on_commit=False) as session:
        attempt = OutreachAttempt(
            key=key, transition_id=reached.transition_id, contact_id=reached.contact_id,
            workflow_id=workflow_id or reached.workflow_id, person_id=reached.person_id,
            step="reminder-1", channel=channel, status=status,
            provider="twilio" if provider_ref else None, provider_ref=provider_ref,
        )
        if created_at is not None:
            attempt.created_at = created_at
        session.add(attempt)
        session.commit()
        return attempt.id


class FakeHandle:
    def __init__(self, temporal: FakeTemporal, workflow_id: str) -> None:
        self._temporal, self._id = temporal, workflow_id

    async def signal(self, name, arg=None, **_):
        await asyncio.sleep(self._temporal.delay)
        if self._id in self._temporal.closed:
            raise RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b"")
        self._temporal.signals.append((self._id, name, arg))


class FakeTemporal:
    """Stands in for temporalio.client.Client: records every signal; `closed` workflows answer
    NOT_FOUND like a finished workflow does."""

    def __init__(self) -> None:
        self.signals: list[tuple[str, str, object]] = []
        self.closed: set[str] = set()
        self.delay = 0.0  # seconds each signal takes, to let concurrent requests overlap

    def get_workflow_handle(self, workflow_id: str, **_) -> FakeHandle:
        return FakeHandle(self, workflow_id)
