"""Reaching Temporal outside the dev server: mutual TLS for a cluster, an API key for Cloud."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from temporalio.service import TLSConfig

from handrail.config import Settings
from handrail.temporal_client import tls_config


def test_plain_grpc_by_default_for_the_dev_server(tmp_path) -> None:
    assert tls_config(Settings(data_dir=tmp_path)) is False


def test_an_api_key_alone_turns_tls_on_with_the_systems_roots(tmp_path) -> None:
    config = tls_config(Settings(data_dir=tmp_path, temporal_api_key="cloud-key"))
    assert isinstance(config, TLSConfig)
    assert config.client_cert is None and config.server_root_ca_cert is None


def test_mutual_tls_reads_the_certificate_key_and_private_ca(tmp_path) -> None:
    for name in ("client.pem", "client.key", "ca.pem"):
        (tmp_path / name).write_bytes(f"--- {name} ---".encode())
    config = tls_config(Settings(
        data_dir=tmp_path, temporal_tls_client_cert=tmp_path / "client.pem",
        temporal_tls_client_key=tmp_path / "client.key", temporal_tls_server_ca=tmp_path / "ca.pem",
        temporal_tls_server_name="temporal.internal",
    ))
    assert config.client_cert == b"--- client.pem ---"
    assert config.client_private_key == b"--- client.key ---"
    assert config.server_root_ca_cert == b"--- ca.pem ---"
    assert config.domain == "temporal.internal"


def test_a_certificate_without_its_key_is_refused_naming_the_setting(tmp_path) -> None:
    (tmp_path / "client.pem").write_text("cert")
    with pytest.raises(ValidationError) as refused:
        Settings(data_dir=tmp_path, temporal_tls_client_cert=tmp_path / "client.pem")
    assert refused.value.errors()[0]["loc"] == ("temporal_tls_client_key",)


def test_a_certificate_path_that_does_not_exist_is_refused(tmp_path) -> None:
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, temporal_tls_client_cert=tmp_path / "missing.pem",
                 temporal_tls_client_key=tmp_path / "missing.key")


def test_the_standard_otel_variable_switches_tracing_on(tmp_path, monkeypatch) -> None:
    from handrail.observability.tracing import temporal_interceptors, traces_endpoint

    assert temporal_interceptors(Settings(data_dir=tmp_path)) == []
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    settings = Settings(data_dir=tmp_path)
    assert settings.otel_exporter_otlp_endpoint == "http://collector:4318"
    assert traces_endpoint(settings.otel_exporter_otlp_endpoint) == "http://collector:4318/v1/traces"
    [interceptor] = temporal_interceptors(settings)
    assert type(interceptor).__name__ == "TracingInterceptor"
