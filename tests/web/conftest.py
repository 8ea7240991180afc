"""A live keyfob server in a thread (with a clock the test moves) and Debian's Chromium driven by
Playwright through ``executable_path`` — never ``playwright install``."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from keyfob.server.api.app import create_app
from keyfob.server.context import open_context
from keyfob.server.settings import Settings

STRICT = os.environ.get("KEYFOB_STRICT") == "1"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0 + 5

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    reason = "Debian's chromium is not installed (apt-get install chromium)"
    if STRICT:
        pytest.fail(f"KEYFOB_STRICT=1: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if STRICT:
            pytest.fail("KEYFOB_STRICT=1: the playwright package is not installed")
        pytest.skip("the playwright package is not installed")
    executable = _chromium()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
            ],
        )
        yield browser
        browser.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, tmp: Path) -> None:
        self.clock = Clock()
        self.ctx = open_context(
            Settings(db=f"sqlite:///{tmp / 'web.db'}", key_file=tmp / "web.key"), clock=self.clock
        )
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(self.ctx), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            assert time.time() < deadline, "the server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.ctx.engine.dispose()


@pytest.fixture
def live(tmp_path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def page(browser, live):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    # A CSP violation or a script error would show up here. (Pages answered with a 4xx status,
    # such as a form shown again with its error, are logged as "Failed to load resource".)
    assert [e for e in errors if not e.startswith("Failed to load resource")] == [], errors


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
