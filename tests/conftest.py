"""Shared fixtures: the one controllable clock, external reference tools, and the strict mode CI
runs in.

A test that needs a system tool asks for it with ``require_tool("oathtool")``. When the tool is
missing the test skips with a visible reason — except under ``KEYFOB_STRICT=1`` (set by
``.ci/run``), where a missing reference tool is a failure: a skipped check is not a passed one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testkit import KEYFOB, Clock

STRICT = os.environ.get("KEYFOB_STRICT") == "1"


@pytest.fixture
def clock() -> Clock:
    """The test's one clock, at ``testkit.T0`` (0 s into a 30 s step): give it to the server
    context, the emulated token (``host_clock``) and the burner, and move it with ``advance``
    or ``set``. Server tests, token tests and new tests alike take this fixture."""
    return Clock()


def _require(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    reason = f"system tool {name!r} is not installed (make test installs it when run as root)"
    if STRICT:
        pytest.fail(f"KEYFOB_STRICT=1: {reason}")
    pytest.skip(reason)


@pytest.fixture
def require_tool() -> Callable[[str], str]:
    """Return the path of a system tool, or skip (fail when strict) if it is missing."""
    return _require


@pytest.fixture
def oathtool() -> str:
    return _require("oathtool")


# --- the real PC/SC stack: pcscd + vsmartcard's vpcd + `keyfob emulator` processes ----------

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")


def _missing(reason: str) -> None:
    if STRICT:
        pytest.fail(f"KEYFOB_STRICT=1: {reason}")
    pytest.skip(reason)


def _virtual_readers() -> list[str]:
    from keyfob.token.pcsc import list_readers

    try:
        return [r for r in list_readers() if "Virtual PCD" in r]
    except Exception:
        return []


@pytest.fixture(scope="session")
def pcscd() -> Iterator[list[str]]:
    """pcscd with vpcd's virtual readers; started here if it is not running (as root)."""
    try:
        import smartcard  # noqa: F401
    except ImportError:
        _missing("pyscard is not installed (it needs swig and libpcsclite-dev to build)")
    if shutil.which("pcscd") is None or not VPCD_DRIVER.exists():
        _missing(
            "pcscd and vsmartcard-vpcd are not installed (apt-get install pcscd vsmartcard-vpcd)"
        )
    proc = None
    if not _virtual_readers():
        if os.geteuid() != 0:
            _missing("pcscd is not running and only root can start it here")
        Path("/run/pcscd").mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            ["pcscd", "--foreground"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(40):
            if _virtual_readers():
                break
            time.sleep(0.25)
    readers = _virtual_readers()
    if not readers:
        _missing("pcscd runs but shows no 'Virtual PCD' reader (is vsmartcard-vpcd installed?)")
    yield readers
    if proc is not None:
        proc.terminate()
        proc.wait(timeout=10)


class Emulator:
    """A `keyfob emulator` process inserted into vpcd, with its control socket."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.control = tmp / "emulator.sock"
        self.proc = subprocess.Popen(
            [
                *KEYFOB,
                "emulator",
                "--vpcd",
                "127.0.0.1:35963",
                "--control",
                str(self.control),
                *args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            self._wait_inserted(time.time() + 20)
        except AssertionError as exc:
            self.stop()  # never leave a card in the shared reader for the next test
            output = self.proc.stdout.read() if self.proc.stdout else ""
            raise AssertionError(f"{exc}; emulator output:\n{output}") from None
        except BaseException:
            self.stop()
            raise

    def _wait_inserted(self, deadline: float) -> None:
        while not self.control.exists():
            if self.proc.poll() is not None:
                raise AssertionError(f"emulator did not start: {self.proc.stdout.read()}")
            if time.time() > deadline:
                raise AssertionError("emulator did not open its control socket in 20 s")
            time.sleep(0.1)
        from keyfob.token.pcsc import list_readers

        while "Virtual PCD 00 00" not in list_readers(with_card=True):
            if time.time() > deadline:
                raise AssertionError("the emulated token never appeared on Virtual PCD 00 00")
            time.sleep(0.1)

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [*KEYFOB, "emulator", *args, "--control", str(self.control)],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    def status(self) -> dict:
        return json.loads(self.cli("status", "--json"))

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return  # already stopped (and its card already left the reader)
        self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        if self.proc.poll() is None:
            self.proc.kill()
        from keyfob.token.pcsc import list_readers

        deadline = time.time() + 10
        while "Virtual PCD 00 00" in list_readers(with_card=True) and time.time() < deadline:
            time.sleep(0.1)
        # vpcd takes a moment after a card leaves before it accepts the next one; an emulator
        # started at once (the CLI now starts in ~0.1 s) could sit unseen in its backlog.
        time.sleep(1.0)


@pytest.fixture
def emulator(pcscd, tmp_path):
    started: list[Emulator] = []

    def start(*args: str) -> Emulator:
        emu = Emulator(tmp_path, *args)
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()
