"""The MLLP listener: long-lived connections from an interface engine, each message ACKed in turn.

Built on python-hl7's asyncio MLLP streams (`hl7.mllp.start_hl7_server`). Blocks are read raw,
so a message python-hl7 cannot parse is still answered (AR) instead of dropping the connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from hl7.mllp import start_hl7_server
from hl7.mllp.exceptions import InvalidBlockError

from .hl7 import build_ack

log = logging.getLogger(__name__)

# One HL7 message in (the bytes between the MLLP frame characters), its ACK out.
MessageHandler = Callable[[bytes], Awaitable[str]]


def _connection_handler(handle_message: MessageHandler):
    async def on_connection(reader, writer) -> None:
        peer = writer.get_extra_info("peername")
        log.info("MLLP connection from %s", peer)
        try:
            while not reader.at_eof():
                try:
                    block = await reader.readblock()
                except asyncio.IncompleteReadError:
                    break  # the sender closed the connection (possibly mid-frame)
                except InvalidBlockError:
                    writer.writeblock(build_ack(b"", "AR", text="MLLP frame without a start block").encode())
                    await writer.drain()
                    continue
                try:
                    ack = await handle_message(block)
                except Exception:  # answer something, keep the connection: the engine will resend
                    log.exception("MLLP message handling failed")
                    ack = build_ack(block, "AE", text="Handrail could not process the message; resend")
                writer.writeblock(ack.encode())
                await writer.drain()
        except (ConnectionResetError, BrokenPipeError):
            pass
        finally:
            writer.close()
            log.info("MLLP connection from %s closed", peer)

    return on_connection


async def start_mllp(host: str, port: int, handle_message: MessageHandler) -> asyncio.Server:
    """Start listening and return the server (port 0 picks a free port: `server.sockets`)."""
    return await start_hl7_server(_connection_handler(handle_message), host=host, port=port,
                                  limit=1024 * 1024)


async def serve_mllp(host: str, port: int, handle_message: MessageHandler) -> None:
    """Listen until cancelled."""
    server = await start_mllp(host, port, handle_message)
    log.info("MLLP listening on %s", ", ".join(str(s.getsockname()) for s in server.sockets))
    async with server:
        await server.serve_forever()
