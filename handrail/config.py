"""Configuration, from the environment only (prefix HANDRAIL_), read once per process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, FilePath, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .domain.notification import TimeZoneName
from .domain.policy import Policy, parse_policy

REPO_ROOT = Path(__file__).resolve().parent.parent
POLICIES_DIR = REPO_ROOT / "policies"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HANDRAIL_", extra="ignore")

    data_dir: Path = Field(default=Path(".handrail"), description="Embedded state: SQLite files, dev keys")
    database_url: str = Field(default="", description="SQLAlchemy URL; SQLite under data_dir if empty")
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    # Reaching a Temporal cluster or Temporal Cloud: mutual TLS (client certificate and key), or
    # an API key (which implies TLS). Any of these turns TLS on; paths must exist at start-up.
    temporal_tls: bool = Field(default=False, description="TLS to the frontend with the system's roots")
    temporal_tls_client_cert: FilePath | None = None
    temporal_tls_client_key: FilePath | None = Field(default=None, validate_default=True)
    temporal_tls_server_ca: FilePath | None = Field(default=None, description="A private CA's certificate")
    temporal_tls_server_name: str | None = Field(default=None, description="Overrides the TLS server name")
    temporal_api_key: SecretStr | None = None
    task_queue: str = "handrail"
    policy: str = Field(default="default", description="A policy file path, or a name in policies/")
    id_key: SecretStr | None = Field(
        default=None, description="Secret for the keyed hash in handoff ids; a dev key is made if empty"
    )
    # Payload encryption keys "k2:<base64>,k1:<base64>" (the first encrypts, all decrypt), or a
    # file holding them; neither set: a dev key file is generated under data_dir.
    codec_keys: SecretStr | None = None
    codec_keys_file: Path | None = None
    session_secret: SecretStr | None = Field(
        default=None, description="Signs console session cookies; a dev secret is made if empty"
    )
    public_base_url: str = "http://localhost:8000"
    temporal_ui_url: str = "http://localhost:8233"
    console_time_zone: TimeZoneName = Field(
        default="Europe/London", description="The console shows every time in this zone (IANA name)"
    )
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one object per line, for a log pipeline (observability/logs.py)"
    )
    # Prometheus scrape addresses ("host:port"; empty: off), one per process kind so that
    # `handrail dev` can run both on one machine. Served apart from the API's public port.
    api_metrics_address: str = ""
    worker_metrics_address: str = ""
    # OpenTelemetry tracing is off unless an OTLP/HTTP collector is named (the standard variable
    # works too); OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are honoured by the SDK.
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "HANDRAIL_OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT",
            "otel_exporter_otlp_endpoint",
        ),
    )
    # Twilio's own variable names (no HANDRAIL_ prefix), as Twilio's documentation spells them.
    twilio_account_sid: str | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_ACCOUNT_SID", "twilio_account_sid")
    )
    twilio_auth_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_AUTH_TOKEN", "twilio_auth_token")
    )
    twilio_from_number: str | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_FROM_NUMBER", "twilio_from_number"),
        description="The sending number, E.164",
    )
    twilio_messaging_service_sid: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TWILIO_MESSAGING_SERVICE_SID", "twilio_messaging_service_sid"),
        description="Send SMS through a Messaging Service instead of one number",
    )

    @field_validator("temporal_tls_client_key")
    @classmethod
    def _client_cert_and_key_together(cls, key: Path | None, info: ValidationInfo) -> Path | None:
        if (key is None) != (info.data.get("temporal_tls_client_cert") is None):
            raise ValueError("the Temporal client certificate and its key are set together, or neither")
        return key

    @property
    def temporal_uses_tls(self) -> bool:
        return bool(self.temporal_tls or self.temporal_tls_client_cert or self.temporal_tls_server_ca
                    or self.temporal_api_key)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'handrail.db'}"

    def policy_path(self) -> Path:
        candidate = Path(self.policy)
        if candidate.suffix in (".toml",) or candidate.exists():
            return candidate
        return POLICIES_DIR / f"{self.policy}.toml"

    def load_policy(self) -> Policy:
        path = self.policy_path()
        if not path.is_file():
            from .domain.policy import PolicyError

            raise PolicyError(f"HANDRAIL_POLICY: no policy file at {path}")
        return parse_policy(path.read_text(encoding="utf-8"), source=str(path))

    def handoff_id_key(self) -> bytes:
        if self.id_key is not None:
            return self.id_key.get_secret_value().encode()
        key_file = self.data_dir / "id.key"
        if not key_file.exists():
            import secrets

            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        return key_file.read_text().strip().encode()


@lru_cache
def get_settings() -> Settings:
    return Settings()
