"""One way to reach Temporal, used by the worker, the API and the tools."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.converter import DataConverter

from .config import Settings
from .security.codec import codec_from_settings, encrypted_data_converter


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic payloads, encrypted with the configured payload keys (see security/codec.py)."""
    return encrypted_data_converter(codec_from_settings(settings))


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
    )
