"""The response head and body leave in one write (``keyfob.server.api.one_write``), and a head
whose body does not follow is still written, one loop turn later or before a close."""

from __future__ import annotations

import asyncio
import importlib
import os
import socket
from typing import Any

import httpx
import pytest

from keyfob.cli import serve as serve_cli
from keyfob.server import accounts
from keyfob.server.api.one_write import HTTP_PROTOCOL, OneWriteHttpToolsProtocol, OneWriteTransport
from keyfob.server.context import open_context
from keyfob.server.settings import Settings
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


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_gives_uvicorn_the_protocol(monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    """Both ways ``keyfob serve`` starts uvicorn (an app object, or workers from the factory)."""
    seen: list[dict[str, Any]] = []
    for name in ("KEYFOB_DB", "KEYFOB_KEY_FILE", "KEYFOB_FORWARDED_ALLOW_IPS"):
        monkeypatch.setenv(name, "")  # _run_http sets them for its workers: put back afterwards
    monkeypatch.setattr(serve_cli.uvicorn, "run", lambda *a, **kw: seen.append(kw))
    settings = Settings(db="sqlite:///unused.db", host="127.0.0.1", port=1)
    app = None if workers > 1 else object()
    serve_cli._run_http(settings, app, workers, "warning", {})  # type: ignore[arg-type]
    assert seen and seen[0]["http"] == HTTP_PROTOCOL and seen[0]["ws"] == "none"
    module, _, name = HTTP_PROTOCOL.partition(":")
    assert getattr(importlib.import_module(module), name) is OneWriteHttpToolsProtocol


def _raw(url: str, request: bytes, *, then: bytes = b"") -> bytes:
    """One request on its own connection, everything the server sent until it closed."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        if then:  # an Expect: 100-continue body, sent once the server asked for it
            assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
            sock.sendall(then)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_keyfob_serve_answers_whole_responses_over_the_protocol(tmp_path) -> None:
    """A real ``keyfob serve`` (uvicorn with this protocol): JSON, a page and an error, each
    complete on a kept-alive connection; a raw GET, a HEAD (a head with no body to carry it)
    and an Expect: 100-continue request (a head alone, then the real answer)."""
    db = f"sqlite:///{tmp_path / 'k.db'}"
    ctx = open_context(Settings(db=db, key_file=tmp_path / "k.key"))
    _, key = accounts.create_api_key(ctx, "one-write", "validate")
    ctx.engine.dispose()
    env = dict(os.environ, KEYFOB_KEY_FILE=str(tmp_path / "k.key"))
    with (
        serve(db, env=env, cwd=tmp_path) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
            page = client.get("/login")
            assert page.status_code == 200 and "</html>" in page.text
            missing = client.post("/api/v1/validate", json={})
            assert missing.status_code == 401 and missing.json()
        answer = _raw(server.url, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head_only = _raw(
            server.url, b"HEAD /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        body = b'{"username": "nobody@example.com", "code": "123456"}'
        continued = _raw(
            server.url,
            b"POST /api/v1/validate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (key.encode(), len(body)),
            then=body,
        )
    assert head_only.startswith(b"HTTP/1.1 ") and head_only.endswith(b"\r\n\r\n")
    assert b"</html>" not in head_only
    assert continued.startswith(b"HTTP/1.1 200 ") and continued.endswith(b'"result":"reject"}')
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    assert len(rest) == length
