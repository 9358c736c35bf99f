"""One way to reach Temporal, used by the worker, the API and the tools."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from .config import Settings
from .observability.tracing import temporal_interceptors
from .security.codec import codec_from_settings, encrypted_data_converter


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic payloads, encrypted with the configured payload keys (see security/codec.py)."""
    return encrypted_data_converter(codec_from_settings(settings))


def tls_config(settings: Settings) -> TLSConfig | bool:
    """Plain gRPC for the dev server; TLS (mutual with a client certificate) for a cluster or
    Temporal Cloud. An API key alone still needs TLS: Temporal Cloud refuses it in clear."""
    if not settings.temporal_uses_tls:
        return False
    return TLSConfig(
        server_root_ca_cert=_read(settings.temporal_tls_server_ca),
        domain=settings.temporal_tls_server_name,
        client_cert=_read(settings.temporal_tls_client_cert),
        client_private_key=_read(settings.temporal_tls_client_key),
    )


async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """`runtime` carries the worker's Prometheus exporter (observability/metrics.py)."""
    api_key = settings.temporal_api_key
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        tls=tls_config(settings),
        api_key=api_key.get_secret_value() if api_key is not None else None,
        interceptors=temporal_interceptors(settings),
        runtime=runtime,
    )


def _read(path) -> bytes | None:
    return path.read_bytes() if path is not None else None
