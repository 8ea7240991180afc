"""The emulator's control socket: a local Unix socket that scripts and tests use to press the
button, read the status and set faults — the same token that PC/SC clients see.

One JSON object per line in each direction: ``{"cmd": "press", "profile": 0}`` →
``{"display": "123456"}``; ``{"cmd": "status"}``; ``{"cmd": "confirm"}`` (the Molto2's ▲);
``{"cmd": "fault", "drop_on": 2, "delay": 0.5}``. The socket file is created mode 0600.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

from keyfob.token.emulator import Card
from keyfob.token.errors import TokenError


class ControlServer:
    def __init__(self, card: Card, path: Path) -> None:
        self.card, self.path = card, path
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.sock.bind(str(path))
        finally:
            os.umask(old)
        self.sock.listen(8)
        self._stop = threading.Event()

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request.get("cmd")
        if cmd == "press":
            return {"display": self.card.press(int(request.get("profile", 0)))}
        if cmd == "status":
            return self.card.status()
        if cmd == "confirm":
            confirm = getattr(self.card, "confirm", None)
            return {"confirmed": confirm() if confirm else None}
        if cmd == "fault":
            with self.card.lock:
                if "drop_on" in request:
                    drop = request["drop_on"]
                    self.card.faults.drop_on = int(drop) if drop is not None else None
                if "drop_ins" in request:
                    ins = request["drop_ins"]
                    self.card.faults.drop_ins = int(ins, 16) if isinstance(ins, str) else ins
                if "delay" in request:
                    self.card.faults.delay = float(request["delay"])
            return {"faults": self.card.faults.as_dict()}
        return {"error": f"unknown command {cmd!r}"}

    def serve_forever(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as stream:
            for line in stream:
                try:
                    reply = self.handle(json.loads(line))
                except (ValueError, TypeError, KeyError) as exc:
                    reply = {"error": f"bad request: {exc}"}
                stream.write(json.dumps(reply).encode() + b"\n")
                stream.flush()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def request(path: Path, message: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """One request to a running emulator."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise TokenError(
                f"no emulator is listening on {path}",
                hint="start one with: keyfob emulator --control PATH",
            ) from None
        with sock.makefile("rwb") as stream:
            stream.write(json.dumps(message).encode() + b"\n")
            stream.flush()
            line = stream.readline()
    if not line:
        raise TokenError("the emulator closed the control connection")
    reply: dict[str, Any] = json.loads(line)  # the control server answers one JSON object a line
    if "error" in reply:
        raise TokenError(f"emulator: {reply['error']}")
    return reply
