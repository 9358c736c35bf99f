"""`handrail mllp`: the MLLP listener as a command (registered in handrail/cli/main.py)."""

from __future__ import annotations

import typer

from ..cli.signals import run_until_signalled


def mllp(
    port: int = typer.Option(2575, help="TCP port for MLLP (2575 is the registered HL7 port)"),
    host: str = typer.Option("0.0.0.0", help="Interface to listen on"),
) -> None:
    """Listen for HL7 v2 ADT over MLLP; every message is answered with an ACK (AA, AE or AR)."""
    from ..api.deps import TemporalConnection
    from ..config import get_settings
    from ..observability.logs import configure_logging
    from ..observability.tracing import setup_tracing
    from ..store.db import make_engine
    from .dispatch import make_hl7_handler
    from .mllp import serve_mllp

    settings = get_settings()
    configure_logging(settings)
    setup_tracing(settings, "mllp")
    policy = settings.load_policy()
    engine = make_engine(settings.resolved_database_url)
    handler = make_hl7_handler(
        settings=settings, policy=policy, engine=engine, temporal=TemporalConnection(settings)
    )
    try:
        # Unacknowledged messages are resent by the interface engine to the next listener.
        run_until_signalled(serve_mllp(host, port, handler), stop_within=10)
    finally:
        engine.dispose()
