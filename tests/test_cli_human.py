"""What people read: the emulator's status without raw epochs or Python dicts, and where the
emulator puts its token by default."""

from __future__ import annotations

import socket

from keyfob.cli import emulator


def test_emulator_status_reads_as_text() -> None:
    status = {
        "serial": "8659622524593",
        "restricted_sync": True,
        "clock": 1_800_000_000,
        "clock_offset": -0.04,
        "commands": {"C5": 2, "D8": 1},
        "faults": {"drop_on": None, "delay": 0.0},
        "screen_locked": None,
    }
    rows = dict(emulator._human_status(status))
    assert rows["clock"] == "2027-01-15 08:00:00 UTC"
    assert rows["clock offset"] == "+0.0 s"
    assert rows["restricted sync"] == "yes"
    assert rows["commands"] == "C5 2, D8 1" and rows["faults"] == "drop_on none, delay 0.0"
    assert rows["screen locked"] == "-"
    text = "\n".join(f"{k} {v}" for k, v in rows.items())
    assert "{" not in text and "1800000000" not in text and "True" not in text


def test_emulator_goes_into_a_listening_vpcd_by_default() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert emulator._vpcd_listening(port)
    assert not emulator._vpcd_listening(port)
    assert emulator._chosen_vpcd("off") is None
    assert emulator._chosen_vpcd("10.0.0.1:1234") == "10.0.0.1:1234"
