"""On the real Temporal dev server: a workflow's raw history, read without the codec, holds none
of the person's details; the API's codec endpoint, with a login, reads it back."""

from __future__ import annotations

import base64
import os
import uuid

import httpx
import pytest
from google.protobuf import json_format
from payload_probe import PayloadProbe, Referral, route_summary
from sqlmodel import Session, select
from temporalio.api.common.v1 import Payloads
from temporalio.client import Client, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from handrail.api.routes import codec as codec_routes
from handrail.config import Settings
from handrail.store.models import ApiToken, AuditEvent, Staff, StaffTeam, Team
from handrail.store.tokens import hash_token, new_token
from handrail.temporal_client import data_converter
from tests.security.conftest import security_app
from tests.temporal_servers import dev_server_cli

pytestmark = pytest.mark.e2e

NAME = "Marigold Testfeather"
PHONE = "+447700900456"
SUMMARY = "sleeping in car since eviction; ran out of sertraline"
REPLY = "YES see you Tuesday"
NOTE = "sister Juniper will drive her"
SECRETS = (NAME, PHONE, SUMMARY, REPLY, NOTE)


def _key(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


def _seed_logins(engine) -> dict[str, str]:
    tokens = {}
    with Session(engine) as session:
        team = Team(code="crisis-east", name="Crisis East")
        session.add(team)
        session.flush()
        for role in ("clinician", "admin"):
            staff = Staff(name=f"Test {role}", role=role)
            session.add(staff)
            session.flush()
            session.add(StaffTeam(staff_id=staff.id, team_id=team.id))
            tokens[role] = new_token()
            session.add(ApiToken(staff_id=staff.id, token_hash=hash_token(tokens[role])))
        session.commit()
    return tokens


async def _run_probe(client: Client, task_queue: str, *, fail: bool):
    handle = await client.start_workflow(
        PayloadProbe.run, Referral(name=NAME, phone=PHONE, summary=SUMMARY, fail=fail),
        id=f"probe-{uuid.uuid4()}", task_queue=task_queue,
    )
    await handle.signal(PayloadProbe.person_reply, REPLY)
    assert await handle.execute_update(PayloadProbe.add_note, NOTE) == f"noted: {NOTE}"
    assert await handle.query(PayloadProbe.notes_so_far) == [NOTE]
    return handle


async def test_raw_history_holds_no_personal_data_and_the_codec_endpoint_reads_it(
    tmp_path, sqlite_engine
):
    settings = Settings(data_dir=tmp_path, id_key="test-key", policy="seconds",
                        codec_keys=f"{_key('k2')},{_key('k1')}",
                        temporal_ui_url="http://ui.example.test:8233")
    task_queue = f"probe-{uuid.uuid4()}"
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(settings), dev_server_existing_path=dev_server_cli(),
    )
    try:
        async with Worker(env.client, task_queue=task_queue, workflows=[PayloadProbe],
                          activities=[route_summary]):
            finished = await _run_probe(env.client, task_queue, fail=False)
            assert await finished.result() == (
                f"summary for {NAME}: {SUMMARY} / reply {REPLY} / note {NOTE}")
            failing = await _run_probe(env.client, task_queue, fail=True)
            with pytest.raises(WorkflowFailureError) as failed:
                await failing.result()
            assert PHONE in str(failed.value.cause)  # readable with the key

        # Somebody with Temporal access but no key: a client without the codec.
        keyless = await Client.connect(env.client.service_client.config.target_host,
                                       namespace=env.client.namespace)
        histories = [await keyless.get_workflow_handle(h.id).fetch_history()
                     for h in (finished, failing)]
    finally:
        await env.shutdown()

    for history in histories:
        raw = b"".join(event.SerializeToString() for event in history.events)
        as_json = history.to_json()
        for secret in SECRETS:
            assert secret.encode() not in raw
            assert secret not in as_json
            assert base64.b64encode(secret.encode()).decode()[:12] not in as_json
    started = histories[0].events[0].workflow_execution_started_event_attributes.input
    assert started.payloads[0].metadata["encoding"] == b"binary/encrypted"
    assert started.payloads[0].metadata["encryption-key-id"] == b"k2"

    # The Temporal UI's view: the codec endpoint decodes the same payloads, for a clinician.
    tokens = _seed_logins(sqlite_engine)
    app = security_app(settings, sqlite_engine, codec_routes.router)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 5000))
    body = json_format.MessageToJson(started)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        anonymous = await http.post("/codec/decode", content=body)
        as_admin = await http.post("/codec/decode", content=body,
                                   headers={"Authorization": f"Bearer {tokens['admin']}"})
        decoded = await http.post(
            "/codec/decode", content=body,
            headers={"Authorization": f"Bearer {tokens['clinician']}", "X-Namespace": "default",
                     "Origin": "http://ui.example.test:8233"},
        )

    assert anonymous.status_code == 401
    assert as_admin.status_code == 403  # admins manage accounts, they do not read records
    assert decoded.status_code == 200
    assert decoded.headers["access-control-allow-origin"] == "http://ui.example.test:8233"
    plain = json_format.Parse(decoded.text, Payloads())
    assert plain.payloads[0].metadata["encoding"] == b"json/plain"
    assert NAME in plain.payloads[0].data.decode()
    assert SUMMARY in plain.payloads[0].data.decode()
    with Session(sqlite_engine) as session:
        [read] = session.exec(select(AuditEvent).where(AuditEvent.action == "codec.decode")).all()
    assert read.source == "203.0.113.5"
    assert read.detail == {"payloads": 1, "namespace": "default"}
