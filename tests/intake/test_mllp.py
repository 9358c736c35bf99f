"""The MLLP listener on loopback: one long-lived connection, every message ACKed in turn."""

from __future__ import annotations

import asyncio

import hl7
import pytest
from hl7.mllp import open_hl7_connection
from intake_world import fixture_bytes

from handrail.api.deps import TemporalConnection
from handrail.domain.intake import EncounterEventKind
from handrail.intake.dispatch import make_hl7_handler
from handrail.intake.hl7 import normalise_segments
from handrail.intake.mllp import start_mllp

# fixture: (ACK code, MSA-2) in the order an interface engine sends them on one connection
CONVERSATION = [
    ("a04_ed_registration_v251.hl7", "AA", "EPC-A04-0001"),
    ("a06_to_inpatient_v251.hl7", "AA", "EPC-A06-0003"),
    ("a08_update_v251.hl7", "AA", "EPC-A08-0004"),
    ("a03_ed_discharge_v251.hl7", "AA", "EPC-A03-0002"),
    ("a13_cancel_discharge_v28.hl7", "AA", "EPC-A13-0005"),
    ("a01_bhu_admission_v28_crlf.hl7", "AA", "MT-A01-3003"),
    ("a11_cancel_admit_v23.hl7", "AA", "MT-A11-3004"),
    ("a03_csu_discharge_v23_lf.hl7", "AA", "CRN5550002"),
    ("a03_out_of_scope_v251.hl7", "AA", "EPC-A03-0006"),
    ("bad_no_pid3_v251.hl7", "AE", "EPC-BAD-0007"),
    ("bad_a03_no_discharge_time_v251.hl7", "AE", "EPC-BAD-0008"),
    ("bad_not_adt_v251.hl7", "AR", "LAB-0009"),
    ("garbage.txt", "AR", "UNKNOWN"),
]


@pytest.fixture
async def listener(settings, policy, world, temporal):
    handler = make_hl7_handler(settings=settings, policy=policy, engine=world.engine,
                               temporal=TemporalConnection(settings, temporal))
    server = await start_mllp("127.0.0.1", 0, handler)  # port 0: a free port
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def exchange(writer, reader, raw: bytes) -> hl7.Message:
    writer.writeblock(raw)
    await writer.drain()
    block = await asyncio.wait_for(reader.readblock(), timeout=5)
    return hl7.parse(normalise_segments(block))


async def test_every_fixture_on_one_connection_is_acked_in_turn(listener, temporal):
    reader, writer = await open_hl7_connection("127.0.0.1", listener)
    try:
        for name, code, control_id in CONVERSATION:
            ack = await exchange(writer, reader, fixture_bytes(name))
            msa = ack.segment("MSA")
            assert (name, str(msa(1)), str(msa(2))) == (name, code, control_id)
    finally:
        writer.close()
    started = sorted(arg.notification.encounter_id for _, _, arg in temporal.starts)
    assert started == ["NGV-4410", "RVV-3003", "V20261120-0001"]
    ed_handoff = next(wid for wid, _, arg in temporal.starts
                      if arg.notification.encounter_id == "V20261120-0001")
    assert [arg.kind for wid, _, arg in temporal.signals if wid == ed_handoff] == [
        EncounterEventKind.ed_registration, EncounterEventKind.admission, EncounterEventKind.update,
        EncounterEventKind.discharge, EncounterEventKind.cancel_discharge,
    ]


async def test_two_messages_on_one_connection_then_a_repeat_starts_nothing_new(listener, temporal):
    reader, writer = await open_hl7_connection("127.0.0.1", listener)
    try:
        first = await exchange(writer, reader, fixture_bytes("a03_ed_discharge_v251.hl7"))
        second = await exchange(writer, reader, fixture_bytes("a03_csu_discharge_v23_lf.hl7"))
        repeat = await exchange(writer, reader, fixture_bytes("a03_ed_discharge_v251.hl7"))
    finally:
        writer.close()
    assert [str(a.segment("MSA")(1)) for a in (first, second, repeat)] == ["AA", "AA", "AA"]
    assert len(temporal.starts) == 2


async def test_concurrent_connections_sending_the_same_message_start_one_workflow(listener, temporal):
    async def send_once() -> str:
        reader, writer = await open_hl7_connection("127.0.0.1", listener)
        try:
            ack = await exchange(writer, reader, fixture_bytes("a03_ed_discharge_v251.hl7"))
        finally:
            writer.close()
        return str(ack.segment("MSA")(1))

    assert await asyncio.gather(*[send_once() for _ in range(3)]) == ["AA"] * 3
    assert len(temporal.starts) == 1


async def test_a_frame_without_start_block_is_rejected_and_the_connection_stays_open(listener, temporal):
    reader, writer = await open_hl7_connection("127.0.0.1", listener)
    try:
        writer.write(b"MSH|^~\\&|no start block\x1c\r")
        await writer.drain()
        rejected = hl7.parse(normalise_segments(await asyncio.wait_for(reader.readblock(), 5)))
        assert str(rejected.segment("MSA")(1)) == "AR"
        ack = await exchange(writer, reader, fixture_bytes("a04_ed_registration_v251.hl7"))
        assert str(ack.segment("MSA")(1)) == "AA"
    finally:
        writer.close()


async def test_without_temporal_the_listener_answers_ae_so_the_sender_resends(settings, policy, world):
    handler = make_hl7_handler(settings=settings, policy=policy, engine=world.engine,
                               temporal=TemporalConnection(settings))  # 127.0.0.1:1: unreachable
    server = await start_mllp("127.0.0.1", 0, handler)
    try:
        reader, writer = await open_hl7_connection("127.0.0.1", server.sockets[0].getsockname()[1])
        try:
            ack = await exchange(writer, reader, fixture_bytes("a03_ed_discharge_v251.hl7"))
            garbage = await exchange(writer, reader, fixture_bytes("garbage.txt"))
        finally:
            writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert [str(ack.segment("MSA")(1)), str(ack.segment("MSA")(3))] == [
        "AE", "workflow service unavailable; resend later"]
    assert str(garbage.segment("MSA")(1)) == "AR"
