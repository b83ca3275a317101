"""uvicorn's WebSocket protocol (``websockets``' sans-I/O one) with the gateway's direct path for
outgoing text messages and its writes combined per turn of the event loop.

Through ASGI, every message an app sends is its own ``websocket.send`` (a dict, the ``str`` the
ASGI spec wants, encoded again, a frame built by ``websockets``) and its own ``transport.write``.
A Responses turn sends some sixteen events: in py-spy those sends were the largest single cost of
a turn. :class:`GatewayWebSocketProtocol`:

- writes through a :class:`~gateway.server.combining.CombiningWriter`, as the HTTP side does:
  what the connection writes while one task step runs (frames, a pong, the handshake's answer)
  leaves in one ``write`` at the end of that turn of the loop, in the order it was written; and
  pauses reading after a message only if the app has not taken it by the end of the turn
  (:class:`SocketWriter`);
- offers itself under ``scope["extensions"]["gateway.websocket"]``
  (:data:`gateway.api.websocket.TEXT_SENDER`): :meth:`~GatewayWebSocketProtocol.send_texts`
  takes a batch of messages as UTF-8 ``bytes`` and frames them in one go. Without an extension
  negotiated a text frame is a two-to-ten-byte header and the payload as it is (RFC 6455 5.2; a
  server's frames are not masked), so the header is written here and the payload joined once;
  with permessage-deflate each message goes through ``websockets``' compressor.

permessage-deflate is offered to clients only with ``[server] websocket_compression`` (uvicorn's
``ws_per_message_deflate``): see :class:`~gateway.config.settings.ServerSettings`.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from typing import Any, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

from gateway.api.websocket import TEXT_SENDER
from gateway.server.combining import CombiningWriter

_TEXT = 0x81  # FIN and the text opcode
_MEDIUM = 126  # payload lengths from here on take a 16-bit length after the header
_LARGE = 1 << 16  # and from here on a 64-bit one
_SHORT_HEADS = tuple(bytes((_TEXT, size)) for size in range(_MEDIUM))
_MEDIUM_HEAD = struct.Struct("!BBH").pack
_LARGE_HEAD = struct.Struct("!BBQ").pack


def text_frame_head(size: int) -> bytes:
    """The header of an unmasked, unfragmented text frame of ``size`` payload bytes."""
    if size < _MEDIUM:
        return _SHORT_HEADS[size]
    if size < _LARGE:
        return _MEDIUM_HEAD(_TEXT, _MEDIUM, size)
    return _LARGE_HEAD(_TEXT, 127, size)


class SocketWriter(CombiningWriter):
    """A WebSocket connection's :class:`CombiningWriter`, whose pause of reading waits for the end
    of the turn of the loop. uvicorn pauses reading after each message until the app's
    ``receive`` takes it, then resumes: two changes of the poller's registration (system calls)
    per message. The gateway's app is always waiting for the next message and takes it in the
    same turn: the pause is then cancelled before it is made. An app that does not keep up is
    paused as before, one turn later."""

    __slots__ = ("_pausing",)

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(transport, loop)
        self._pausing: asyncio.Handle | None = None

    def pause_reading(self) -> None:
        if self._pausing is None:
            self._pausing = self.loop.call_soon(self._pause)

    def _pause(self) -> None:
        self._pausing = None
        if not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._pausing is not None:
            self._pausing.cancel()
            self._pausing = None
        else:
            self.transport.resume_reading()


class GatewayWebSocketProtocol(WebSocketsSansIOProtocol):
    """:class:`WebSocketsSansIOProtocol` writing through a :class:`CombiningWriter`, with
    :meth:`send_texts` for the app (see the module docstring)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport = cast(asyncio.Transport, SocketWriter(self.transport, self.loop))

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # The app's task is created, not started: its scope still takes the extension.
        scope: Any = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][TEXT_SENDER] = self

    def send_texts(self, messages: Sequence[bytes]) -> bool:
        """Send each of ``messages`` (UTF-8 text) as a text message; they leave with whatever
        else this turn of the loop writes. False (nothing sent) once the connection is closing
        or gone."""
        conn = self.conn
        if self.disconnected or conn.state is not State.OPEN:
            return False
        if conn.extensions:
            for message in messages:
                conn.send_text(message)
            parts = conn.data_to_send()
        else:
            parts = []
            for message in messages:
                parts.append(text_frame_head(len(message)))
                parts.append(message)
        self.transport.write(b"".join(parts))
        return True
