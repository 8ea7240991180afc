"""uvicorn's httptools protocol with each response's head and body leaving in one write.

uvicorn writes a response's status line and headers when the app sends
``http.response.start`` and the body when it sends ``http.response.body``: two ``send``
system calls and, with ``TCP_NODELAY``, two TCP segments for a validation answer of a few
hundred bytes. ``make profile`` showed that write path as the largest single cost of a
validation (about a third of the server's busy time), so the head is held until the body
follows — in the same event-loop turn for every route here — and both go out in one call.

A head whose body does not follow in that turn (``100 Continue``, a streamed response) is
written on the loop's next turn by a callback, and ``close`` writes anything held first, so
nothing is delayed beyond one turn and nothing is lost.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class OneWriteTransport:
    """A transport proxy that joins a held response head to the next write."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is not None:
            head, self._held = self._held, None
            self._transport.write(head + bytes(data))
        elif isinstance(data, bytes) and data.startswith(b"HTTP/") and data.endswith(b"\r\n\r\n"):
            self._held = data  # a response head alone: its body is about to follow
            self._loop.call_soon(self._flush)
        else:
            self._transport.write(data)

    def _flush(self) -> None:
        if self._held is not None:
            head, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(head)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` over a ``OneWriteTransport``; given to uvicorn as ``http=``."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        proxy: Any = OneWriteTransport(cast(asyncio.Transport, transport), self.loop)
        super().connection_made(proxy)


HTTP_PROTOCOL = f"{__name__}:OneWriteHttpToolsProtocol"
