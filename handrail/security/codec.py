"""Encrypted Temporal payloads: AES-256-GCM over every payload, with the key id in the metadata.

Everything Temporal stores for Handrail (workflow inputs and results, activity arguments,
signals, updates, queries, and failure messages) passes through `EncryptionCodec`, so somebody
with access to Temporal's database or to a history export reads ciphertext only. Keys rotate:
the first key of the keyring encrypts, every key decrypts, and each payload names its key id.

Keys come from the environment (`HANDRAIL_CODEC_KEYS="k2:<base64>,k1:<base64>"`), from a file
(`HANDRAIL_CODEC_KEYS_FILE`, the same format, one key per line allowed), or, for the embedded
dev stack only, from a key file generated under the data dir (`ensure_dev_keys`).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
DEV_KEYS_FILENAME = "codec.keys"
_NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class CodecKeyError(ValueError):
    """The keyring is missing or malformed, or a payload names a key we do not hold."""


class PayloadTamperedError(ValueError):
    """A payload's authentication tag does not match: it was altered or is not ours."""


@dataclass(frozen=True)
class Keyring:
    """Key ids and 256-bit keys, newest first: `keys[0]` encrypts, all decrypt."""

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise CodecKeyError("the payload keyring is empty")
        ids = [key_id for key_id, _ in self.keys]
        if len(set(ids)) != len(ids):
            raise CodecKeyError(f"payload key ids repeat: {', '.join(ids)}")

    @property
    def current_id(self) -> str:
        return self.keys[0][0]

    def key(self, key_id: str) -> bytes:
        for candidate_id, key in self.keys:
            if candidate_id == key_id:
                return key
        known = ", ".join(key_id for key_id, _ in self.keys)
        raise CodecKeyError(
            f"payload was encrypted with key id {key_id!r}, which is not configured "
            f"(configured: {known}); add that key to HANDRAIL_CODEC_KEYS to read it"
        )


def parse_keyring(text: str, *, source: str = "HANDRAIL_CODEC_KEYS") -> Keyring:
    """Parse "id:base64key" entries separated by commas or lines; `#` starts a comment line.

    Error messages name the source and the key id, never the key material."""
    entries = []
    for line in text.splitlines():
        if line.strip().startswith("#"):
            continue
        entries.extend(part.strip() for part in line.split(",") if part.strip())
    keys = []
    for position, entry in enumerate(entries, start=1):
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not _KEY_ID.match(key_id):
            raise CodecKeyError(
                f"{source}: entry {position} is not 'id:base64key' with an id of letters, "
                "digits, '.', '_' or '-'"
            )
        try:
            standard = encoded.strip().replace("-", "+").replace("_", "/")
            key = base64.b64decode(standard, validate=True)
        except (binascii.Error, ValueError):
            raise CodecKeyError(f"{source}: key {key_id!r} is not valid base64") from None
        if len(key) != 32:
            raise CodecKeyError(
                f"{source}: key {key_id!r} is {len(key)} bytes; AES-256 needs 32 "
                "(make one: python -c 'import os,base64;print(base64.b64encode(os.urandom(32)))')"
            )
        keys.append((key_id, key))
    if not keys:
        raise CodecKeyError(f"{source}: no keys found")
    return Keyring(tuple(keys))


def new_key_entry(key_id: str) -> str:
    """A fresh "id:base64key" entry, for rotation: put it first in HANDRAIL_CODEC_KEYS."""
    if not _KEY_ID.match(key_id):
        raise CodecKeyError(f"key id {key_id!r}: use letters, digits, '.', '_' or '-'")
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


def ensure_dev_keys(data_dir: Path) -> Path:
    """The embedded dev stack's key file under the data dir, made once with mode 0600."""
    path = Path(data_dir) / DEV_KEYS_FILENAME
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = new_key_entry(f"dev-{secrets.token_hex(4)}")
        # Create with 0600 from the start so the key is never readable by others, even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("# Handrail dev payload key: for the embedded stack only\n")
            handle.write(entry + "\n")
    path.chmod(0o600)
    return path


def keyring_from_settings(settings: Settings) -> Keyring:
    if settings.codec_keys is not None:
        return parse_keyring(settings.codec_keys.get_secret_value())
    if settings.codec_keys_file is not None:
        path = Path(settings.codec_keys_file)
        if not path.is_file():
            raise CodecKeyError(f"HANDRAIL_CODEC_KEYS_FILE: no key file at {path}")
        return parse_keyring(path.read_text(encoding="utf-8"), source=str(path))
    path = ensure_dev_keys(settings.data_dir)
    log.warning("payload keys: the dev key file under the data dir; set HANDRAIL_CODEC_KEYS")
    return parse_keyring(path.read_text(encoding="utf-8"), source=str(path))


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM per payload; the key id is also bound into the tag as associated data."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self.keyring.current_id
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # not ours to open (written before encryption was turned on)
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        if key_id not in self._ciphers:
            self.keyring.key(key_id)  # raises CodecKeyError naming the id
        nonce, sealed = payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:]
        try:
            plain = self._ciphers[key_id].decrypt(nonce, sealed, key_id.encode())
        except InvalidTag:
            raise PayloadTamperedError(
                f"payload encrypted with key id {key_id!r} failed authentication: "
                "it was altered, truncated or sealed with a different key"
            ) from None
        return Payload.FromString(plain)


def encrypted_data_converter(codec: PayloadCodec) -> DataConverter:
    """Pydantic payloads, encrypted; failure messages and stack traces moved into an encrypted
    payload too (the failure converter with encoded attributes)."""
    return DataConverter(
        payload_converter_class=PydanticPayloadConverter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def codec_from_settings(settings: Settings) -> EncryptionCodec:
    return EncryptionCodec(keyring_from_settings(settings))
