"""The response head and body leave in one write (``keyfob.server.api.one_write``), and a head
whose body does not follow is still written, one loop turn later or before a close."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx

from keyfob.server.api.one_write import HTTP_PROTOCOL, OneWriteTransport
from testkit import serve

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n"


class Recording(asyncio.Transport):
    """A transport that keeps what was written, in order, and whether it was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8000) if name == "sockname" else default


def _run(body: Any) -> Any:
    return asyncio.run(body())


def test_head_and_body_of_one_response_are_one_write() -> None:
    async def body() -> list[bytes]:
        raw = Recording()
        proxy = OneWriteTransport(raw, asyncio.get_running_loop())
        proxy.write(HEAD)
        proxy.write(b"{}")
        await asyncio.sleep(0)  # the flush callback finds nothing held
        return raw.writes

    assert _run(body) == [HEAD + b"{}"]


def test_a_head_alone_is_written_on_the_next_loop_turn() -> None:
    async def body() -> tuple[list[bytes], list[bytes]]:
        raw = Recording()
        proxy = OneWriteTransport(raw, asyncio.get_running_loop())
        proxy.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        before = list(raw.writes)
        await asyncio.sleep(0)
        return before, raw.writes

    before, after = _run(body)
    assert before == []
    assert after == [b"HTTP/1.1 100 Continue\r\n\r\n"]


def test_close_writes_a_held_head_first_and_other_writes_pass_through() -> None:
    async def body() -> Recording:
        raw = Recording()
        proxy = OneWriteTransport(raw, asyncio.get_running_loop())
        proxy.write(b"5\r\nhello\r\n")  # a chunk of a streamed body: not a head
        proxy.write(HEAD)
        proxy.close()
        await asyncio.sleep(0)  # the pending flush must not write the head twice
        return raw

    raw = _run(body)
    assert raw.writes == [b"5\r\nhello\r\n", HEAD]
    assert raw.closed


def test_everything_else_is_the_real_transport() -> None:
    async def body() -> Any:
        proxy = OneWriteTransport(Recording(), asyncio.get_running_loop())
        return proxy.get_extra_info("sockname")

    assert _run(body) == ("127.0.0.1", 8000)


def test_keyfob_serve_answers_whole_responses_over_the_protocol(tmp_path) -> None:
    """A real ``keyfob serve`` (uvicorn with this protocol): JSON, a page and an error, each
    complete on a kept-alive connection, and a raw request answered head and body."""
    assert HTTP_PROTOCOL.endswith(":OneWriteHttpToolsProtocol")
    db = f"sqlite:///{tmp_path / 'k.db'}"
    with serve(db, cwd=tmp_path) as server, httpx.Client(base_url=server.url) as client:
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
            page = client.get("/login")
            assert page.status_code == 200 and "</html>" in page.text
            missing = client.post("/api/v1/validate", json={})
            assert missing.status_code == 401 and missing.json()
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    assert len(rest) == length
