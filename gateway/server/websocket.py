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
  (:data:`gateway.api.socket.TEXT_SENDER`): :meth:`~GatewayWebSocketProtocol.send_texts`
  takes a batch of messages as UTF-8 ``bytes`` and frames them in one go. Without an extension
  negotiated a text frame is a two-to-ten-byte header and the payload as it is (RFC 6455 5.2; a
  server's frames are not masked), so the header is written here and the payload joined once;
  with permessage-deflate each message goes through the compressor ``websockets`` negotiated,
  its frame built here too (``websockets``' two ``Frame`` objects per message cost 60 % on top of
  zlib's own work; callgrind, a deflated turn: 4.22 -> 4.01 M instructions).

permessage-deflate is offered to clients only with ``[server] websocket_compression`` (uvicorn's
``ws_per_message_deflate``): see :class:`~gateway.config.settings.ServerSettings`.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Sequence
from typing import Any, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.extensions import Extension
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.http11 import Request
from websockets.protocol import State

from gateway.api.socket import TEXT_SENDER
from gateway.server.combining import CombiningWriter

_TEXT = 0x81  # FIN and the text opcode
_DEFLATED = 0xC1  # FIN, RSV1 (a compressed message: permessage-deflate) and the text opcode
_MEDIUM = 126  # payload lengths from here on take a 16-bit length after the header
_LARGE = 1 << 16  # and from here on a 64-bit one
_SHORT_HEADS = {first: tuple(bytes((first, size)) for size in range(_MEDIUM)) for first in (_TEXT, _DEFLATED)}
_MEDIUM_HEAD = struct.Struct("!BBH").pack
_LARGE_HEAD = struct.Struct("!BBQ").pack
_EMPTY_BLOCK = 4  # the bytes 00 00 ff ff a sync flush ends with, not sent (RFC 7692 7.2.1)


def text_frame_head(size: int, *, deflated: bool = False) -> bytes:
    """The header of an unmasked, unfragmented text frame of ``size`` payload bytes (``deflated``:
    a message compressed with permessage-deflate)."""
    first = _DEFLATED if deflated else _TEXT
    if size < _MEDIUM:
        return _SHORT_HEADS[first][size]
    if size < _LARGE:
        return _MEDIUM_HEAD(first, _MEDIUM, size)
    return _LARGE_HEAD(first, 127, size)


def _deflate_kept(extensions: Sequence[Extension]) -> PerMessageDeflate | None:
    """The permessage-deflate extension if it is the only one and keeps its context from one
    message to the next (then its compressor is used here as it is); else None."""
    if len(extensions) != 1:
        return None
    extension = extensions[0]
    if isinstance(extension, PerMessageDeflate) and not extension.local_no_context_takeover:
        return extension
    return None


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
        parts: list[bytes | memoryview] = []
        if not conn.extensions:
            for message in messages:
                parts.append(text_frame_head(len(message)))
                parts.append(message)
        elif (deflate := _deflate_kept(conn.extensions)) is not None:
            # websockets' own encoding (PerMessageDeflate.encode) without a Frame per message.
            encoder = deflate.encoder
            for message in messages:
                data = encoder.compress(message) + encoder.flush(zlib.Z_SYNC_FLUSH)
                size = len(data) - _EMPTY_BLOCK
                parts.append(text_frame_head(size, deflated=True))
                parts.append(memoryview(data)[:size])
        else:
            for message in messages:
                conn.send_text(message)
            parts.extend(conn.data_to_send())
        self.transport.write(b"".join(parts))
        return True
