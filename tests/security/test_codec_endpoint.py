"""The Temporal UI's codec endpoint: login required, CORS only for the configured UI origin."""

from __future__ import annotations

import base64
import json
import os

import pytest
from fastapi.testclient import TestClient
from google.protobuf import json_format
from sqlmodel import Session
from temporalio.api.common.v1 import Payload, Payloads

from handrail.api.routes import codec as codec_routes
from handrail.config import Settings
from handrail.security.codec import EncryptionCodec, parse_keyring
from handrail.security.sessions import cookie_name, issue_session
from handrail.store.models import ApiToken, Staff, StaffTeam, Team
from handrail.store.tokens import hash_token, new_token
from handrail.store.types import utcnow
from tests.security.conftest import security_app

UI = "http://ui.example.test:8233"
K1 = f"k1:{base64.b64encode(os.urandom(32)).decode()}"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, id_key="test-key", policy="seconds", codec_keys=K1,
                    temporal_ui_url=UI, public_base_url="http://testserver", session_secret="x" * 40)


@pytest.fixture
def people(sqlite_engine) -> dict[str, tuple[int, str]]:
    made = {}
    with Session(sqlite_engine) as session:
        team = Team(code="crisis-west", name="Crisis West")
        session.add(team)
        session.flush()
        for role in ("care_coordinator", "admin"):
            staff = Staff(name=f"Test {role}", role=role, password_hash="$argon2id$placeholder")
            session.add(staff)
            session.flush()
            session.add(StaffTeam(staff_id=staff.id, team_id=team.id))
            token = new_token()
            session.add(ApiToken(staff_id=staff.id, token_hash=hash_token(token)))
            made[role] = (staff.id, token)
        session.commit()
    return made


@pytest.fixture
def client(settings, sqlite_engine, people):
    with TestClient(security_app(settings, sqlite_engine, codec_routes.router)) as c:
        yield c


def _body(*payloads: Payload) -> str:
    return json_format.MessageToJson(Payloads(payloads=list(payloads)))


def _bearer(people, role="care_coordinator") -> dict[str, str]:
    return {"Authorization": f"Bearer {people[role][1]}"}


PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"given_name": "Rowan"}')


def test_encode_then_decode_round_trip(client, people):
    sealed = client.post("/codec/encode", content=_body(PLAIN), headers=_bearer(people))
    assert sealed.status_code == 200
    sealed_payload = json_format.Parse(sealed.text, Payloads()).payloads[0]
    assert sealed_payload.metadata["encryption-key-id"] == b"k1"
    assert b"Rowan" not in sealed_payload.data

    opened = client.post("/codec/decode", content=sealed.text, headers=_bearer(people))
    assert opened.status_code == 200
    assert json_format.Parse(opened.text, Payloads()).payloads[0] == PLAIN


def test_the_wire_format_is_the_ui_json_with_base64_fields(client, people):
    ui_request = {"payloads": [{"metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                                "data": base64.b64encode(b'"hello"').decode()}]}
    sealed = client.post("/codec/encode", json=ui_request, headers=_bearer(people)).json()
    assert base64.b64decode(sealed["payloads"][0]["metadata"]["encoding"]) == b"binary/encrypted"
    opened = client.post("/codec/decode", json=sealed, headers=_bearer(people)).json()
    assert opened == ui_request


def test_login_is_required_and_admins_may_not_read(client, people):
    assert client.post("/codec/decode", content=_body(PLAIN)).status_code == 401
    bad = client.post("/codec/decode", content=_body(PLAIN), headers={"Authorization": "Bearer hr_nope"})
    assert bad.status_code == 401
    assert client.post("/codec/decode", content=_body(PLAIN), headers=_bearer(people, "admin")
                       ).status_code == 403


async def test_unknown_key_and_tampering_are_422_with_the_reason(client, people):
    other = EncryptionCodec(parse_keyring(f"retired:{base64.b64encode(os.urandom(32)).decode()}"))
    [foreign] = await other.encode([PLAIN])
    unknown = client.post("/codec/decode", content=_body(foreign), headers=_bearer(people))
    assert unknown.status_code == 422
    assert "'retired'" in unknown.json()["detail"]

    [mine] = await EncryptionCodec(parse_keyring(K1)).encode([PLAIN])
    tampered = Payload(metadata=dict(mine.metadata), data=mine.data[:-1] + bytes([mine.data[-1] ^ 1]))
    refused = client.post("/codec/decode", content=_body(tampered), headers=_bearer(people))
    assert refused.status_code == 422
    assert "failed authentication" in refused.json()["detail"]


def test_malformed_bodies_are_422(client, people):
    answer = client.post("/codec/decode", content=b"{not json", headers=_bearer(people))
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "payloads"]
    assert client.post("/codec/decode", content=json.dumps({"payloads": "x"}),
                       headers=_bearer(people)).status_code == 422


def test_cors_answers_only_the_configured_ui(client, people):
    preflight = client.options("/codec/decode", headers={
        "Origin": UI, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == UI
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert "x-namespace" in preflight.headers["access-control-allow-headers"]

    stranger = client.options("/codec/decode", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert stranger.status_code == 403
    assert "access-control-allow-origin" not in stranger.headers

    refused = client.post("/codec/decode", content=_body(PLAIN), headers={"Origin": UI})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == UI  # the UI can show why
    elsewhere = client.post("/codec/decode", content=_body(PLAIN),
                            headers={"Origin": "https://evil.example", **_bearer(people)})
    assert "access-control-allow-origin" not in elsewhere.headers


def test_the_console_session_cookie_also_logs_the_ui_in(client, settings, sqlite_engine, people):
    with Session(sqlite_engine) as session:
        coordinator = session.get(Staff, people["care_coordinator"][0])
        admin = session.get(Staff, people["admin"][0])
        cookie, _ = issue_session(settings, coordinator, utcnow())
        admin_cookie, _ = issue_session(settings, admin, utcnow())

    client.cookies.set(cookie_name(settings), cookie)
    assert client.post("/codec/decode", content=_body(PLAIN), headers={"Origin": UI}).status_code == 200
    client.cookies.set(cookie_name(settings), admin_cookie)
    assert client.post("/codec/decode", content=_body(PLAIN)).status_code == 403
    client.cookies.set(cookie_name(settings), cookie[:-3] + "AAA")
    assert client.post("/codec/decode", content=_body(PLAIN)).status_code == 401
