"""A live keyfob server in a thread (with a clock the test moves) and Debian's Chromium driven by
Playwright through ``executable_path`` — never ``playwright install``."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit import T0, Clock, ThreadedServer

STRICT = os.environ.get("KEYFOB_STRICT") == "1"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PASSWORD = "first-time-password"
NEW_PASSWORD = "my-own-password-42"


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


@pytest.fixture
def live(tmp_path, clock: Clock) -> Iterator[ThreadedServer]:
    """A keyfob server in a thread on the test's clock, 5 s into a 30 s step."""
    clock.set(T0 + 5)
    server = ThreadedServer(tmp_path, clock, "web")
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


def sign_in(page, live, username: str, password: str) -> None:
    page.goto(f"{live.url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def first_sign_in(
    page, live, username: str, password: str = PASSWORD, screenshot: str | None = "password-first"
) -> None:
    """``username``'s first sign-in with ``password``: the forced password change page (its
    ``screenshot`` taken, unless None), ``NEW_PASSWORD`` saved, back home with the notice."""
    sign_in(page, live, username, password)
    page.wait_for_url(f"{live.url}/password")
    if screenshot is not None:
        shot(page, screenshot)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save password").click()
    page.wait_for_url(re.compile(r".*/\?notice=password"))
