"""The payload codec: what Temporal stores is ciphertext, tamper-evident, and keys rotate."""

from __future__ import annotations

import base64
import os
import stat

import pytest
from pydantic import BaseModel
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure

from handrail.config import Settings
from handrail.security.codec import (
    ENCODING,
    KEY_ID_METADATA,
    CodecKeyError,
    EncryptionCodec,
    PayloadTamperedError,
    encrypted_data_converter,
    ensure_dev_keys,
    keyring_from_settings,
    new_key_entry,
    parse_keyring,
)

PERSON = "Wren Okonkwo-Test"
PHONE = "+447700900123"


class Summary(BaseModel):
    name: str
    phone: str
    stressors: str


def _entry(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


def _plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


async def test_round_trip_hides_the_content_and_names_the_key():
    codec = EncryptionCodec(parse_keyring(_entry("k1")))
    original = _plain(f'{{"name": "{PERSON}", "phone": "{PHONE}"}}')

    [sealed] = await codec.encode([original])

    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == b"k1"
    assert PERSON.encode() not in sealed.SerializeToString()
    assert PHONE.encode() not in sealed.SerializeToString()
    [opened] = await codec.decode([sealed])
    assert opened == original


async def test_same_payload_encrypts_differently_each_time():
    codec = EncryptionCodec(parse_keyring(_entry("k1")))
    first, second = await codec.encode([_plain(PERSON), _plain(PERSON)])
    assert first.data != second.data


async def test_a_flipped_byte_is_refused_by_the_gcm_tag():
    codec = EncryptionCodec(parse_keyring(_entry("k1")))
    [sealed] = await codec.encode([_plain(PERSON)])
    tampered = bytearray(sealed.data)
    tampered[20] ^= 0x01
    altered = Payload(metadata=dict(sealed.metadata), data=bytes(tampered))

    with pytest.raises(PayloadTamperedError, match="failed authentication"):
        await codec.decode([altered])


async def test_relabelling_a_payload_with_another_key_id_is_refused():
    codec = EncryptionCodec(parse_keyring(",".join([_entry("k2"), _entry("k1")])))
    [sealed] = await codec.encode([_plain(PERSON)])
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID_METADATA: b"k1"}, data=sealed.data)

    with pytest.raises(PayloadTamperedError):
        await codec.decode([relabelled])


async def test_rotation_keeps_old_payloads_readable_and_seals_new_ones_with_the_new_key():
    k1 = _entry("k1")
    before = EncryptionCodec(parse_keyring(k1))
    [old] = await before.encode([_plain("written before rotation")])

    after = EncryptionCodec(parse_keyring(f"{_entry('k2')},{k1}"))
    [new] = await after.encode([_plain("written after rotation")])

    assert old.metadata[KEY_ID_METADATA] == b"k1"
    assert new.metadata[KEY_ID_METADATA] == b"k2"
    assert (await after.decode([old]))[0].data == b"written before rotation"
    assert (await after.decode([new]))[0].data == b"written after rotation"


async def test_a_payload_whose_key_is_unknown_fails_naming_the_key_id():
    [sealed] = await EncryptionCodec(parse_keyring(_entry("retired"))).encode([_plain(PERSON)])
    reader = EncryptionCodec(parse_keyring(_entry("k9")))

    with pytest.raises(CodecKeyError, match="'retired'.*not configured"):
        await reader.decode([sealed])


async def test_unencrypted_payloads_pass_through_decode():
    codec = EncryptionCodec(parse_keyring(_entry("k1")))
    plain = _plain("legacy")
    assert (await codec.decode([plain]))[0] == plain


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no keys"),
        ("k1", "not 'id:base64key'"),
        ("k 1:AAAA", "not 'id:base64key'"),
        ("k1:not*base64", "not valid base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "5 bytes; AES-256 needs 32"),
    ],
)
def test_malformed_keyrings_are_refused_with_the_reason(text, reason):
    with pytest.raises(CodecKeyError, match=reason):
        parse_keyring(text)


def test_key_errors_never_echo_key_material():
    secret = base64.b64encode(os.urandom(20)).decode()
    with pytest.raises(CodecKeyError) as refused:
        parse_keyring(f"k1:{secret}")
    assert secret not in str(refused.value)


def test_repeated_key_ids_are_refused():
    with pytest.raises(CodecKeyError, match="repeat"):
        parse_keyring(f"{_entry('k1')},{_entry('k1')}")


def test_keys_come_from_the_environment_first_then_a_file(tmp_path, monkeypatch):
    key_file = tmp_path / "keys"
    key_file.write_text("# rotated 2026-11\n" + _entry("from-file") + "\n" + _entry("older") + "\n")
    monkeypatch.setenv("HANDRAIL_CODEC_KEYS_FILE", str(key_file))
    assert keyring_from_settings(Settings(data_dir=tmp_path)).current_id == "from-file"

    monkeypatch.setenv("HANDRAIL_CODEC_KEYS", _entry("from-env"))
    assert keyring_from_settings(Settings(data_dir=tmp_path)).current_id == "from-env"


def test_a_missing_key_file_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("HANDRAIL_CODEC_KEYS", raising=False)
    monkeypatch.setenv("HANDRAIL_CODEC_KEYS_FILE", str(tmp_path / "absent"))
    with pytest.raises(CodecKeyError, match="no key file"):
        keyring_from_settings(Settings(data_dir=tmp_path))


def test_dev_keys_are_generated_once_and_private(tmp_path):
    path = ensure_dev_keys(tmp_path)
    content = path.read_text()

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_dev_keys(tmp_path).read_text() == content
    assert parse_keyring(content).current_id.startswith("dev-")


def test_new_key_entry_is_a_usable_key():
    assert parse_keyring(new_key_entry("k3")).current_id == "k3"


async def test_the_data_converter_encrypts_values_and_failure_messages():
    converter = encrypted_data_converter(EncryptionCodec(parse_keyring(_entry("k1"))))
    summary = Summary(name=PERSON, phone=PHONE, stressors="eviction notice")

    [payload] = await converter.encode([summary])
    assert PERSON.encode() not in payload.SerializeToString()
    assert await converter.decode([payload], [Summary]) == [summary]

    failure = Failure()
    await converter.encode_failure(RuntimeError(f"could not text {PHONE}"), failure)
    assert failure.message == "Encoded failure"
    assert PHONE.encode() not in failure.SerializeToString()
    restored = await converter.decode_failure(failure)
    assert PHONE in str(restored)
