"""``keyfob emulator``: run a virtual programmable token (and drive it from scripts)."""

from __future__ import annotations

import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from keyfob.cli.common import print_json
from keyfob.errors import KeyfobError
from keyfob.token import control, trace
from keyfob.token.control import ControlServer
from keyfob.token.emulator import Card, create
from keyfob.token.models import MODELS, by_name
from keyfob.token.vpcd import DEFAULT_PORT, VpcdBridge

app = typer.Typer(
    help="Run a virtual programmable token (NFC single-profile or Molto2).",
    invoke_without_command=True,
)
ControlOpt = Annotated[Path, typer.Option("--control", help="The emulator's control socket.")]


def _vpcd_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host:
        return text or "127.0.0.1", DEFAULT_PORT
    if not port.isdigit():
        raise KeyfobError(f"--vpcd {text!r}: the port is not a number", hint="e.g. 127.0.0.1:35963")
    return host, int(port)


def _vpcd_listening(port: int = DEFAULT_PORT) -> bool:
    """Whether something listens on this machine's TCP ``port`` (pcscd's vpcd does on 35963),
    read from /proc/net without connecting: vpcd takes a connection for an inserted card."""
    wanted = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[1].endswith(wanted) and fields[3] == "0A":  # LISTEN
                return True
    return False


def _chosen_vpcd(vpcd: str | None) -> str | None:
    """``--vpcd``: an address, ``off``, or (not given) the local vpcd when one listens."""
    if vpcd is None:
        return f"127.0.0.1:{DEFAULT_PORT}" if _vpcd_listening() else None
    return None if vpcd.lower() in ("off", "none", "no") else vpcd


def _panel(card: Card, shown: str, shown_at: float) -> Panel:
    status = card.status()
    table = Table.grid(padding=(0, 2))
    table.add_row("model", f"{status['model']} ({status['family']})")
    table.add_row("serial", status["serial"])
    clock = datetime.fromtimestamp(status["clock"], UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    offset = round(status["clock_offset"], 1) or 0.0  # no "-0.0"
    table.add_row("clock", f"{clock}  ({offset:+.1f} s, {status['drift_ppm']:g} ppm)")
    visible = shown if time.time() - shown_at < 30 else "—"
    table.add_row("display", f"[bold]{visible}[/bold]")
    if status.get("screen_locked"):
        table.add_row("screen", "locked (keyfob token unlock)")
    table.add_row("APDUs", str(status["apdus"]))
    return Panel(table, title="keyfob emulator", subtitle="Enter: press the button · Ctrl-C: quit")


@app.callback()
def run(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Option(
            help="miniOTP-2, OTPC-P1, OTPC-P2, C301, C302, Molto2, … "
            f"(known: {', '.join(m.name for m in MODELS)})"
        ),
    ] = "OTPC-P2",
    serial: Annotated[
        str | None, typer.Option(help="Serial (default: model prefix + random).")
    ] = None,
    state: Annotated[
        Path | None, typer.Option(help="JSON state file (seed, config, clock).")
    ] = None,
    clock_offset: Annotated[
        float, typer.Option(help="Start the clock this many seconds off.")
    ] = 0.0,
    drift_ppm: Annotated[float, typer.Option(help="Clock drift in parts per million.")] = 0.0,
    vpcd: Annotated[
        str | None,
        typer.Option(
            envvar="KEYFOB_VPCD",
            help="Insert the token into vpcd at HOST:PORT (pcscd's virtual reader); 'off' "
            f"keeps it out. Default: 127.0.0.1:{DEFAULT_PORT} when pcscd's vpcd listens there.",
        ),
    ] = None,
    control_path: Annotated[
        Path | None,
        typer.Option("--control", help="Control socket for scripts (press, status, faults)."),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Log every APDU the token receives on stderr (header, status word, lengths).",
        ),
    ] = False,
) -> None:
    """Run a virtual token; its display updates live, Enter presses the button."""
    if ctx.invoked_subcommand is not None:
        return
    if verbose:
        trace.enable()
    try:
        chosen = by_name(model)
    except KeyError:
        raise KeyfobError(
            f"unknown model {model!r}", hint="known: " + ", ".join(m.name for m in MODELS)
        ) from None
    card = create(
        chosen, serial=serial, state_file=state, clock_offset=clock_offset, drift_ppm=drift_ppm
    )
    vpcd = _chosen_vpcd(vpcd)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    workers: list[threading.Thread] = []
    bridge = server = None
    if vpcd:
        host, port = _vpcd_address(vpcd)
        bridge = VpcdBridge(card, host, port)
        workers.append(threading.Thread(target=bridge.run, daemon=True))
    if control_path:
        server = ControlServer(card, control_path)
        workers.append(threading.Thread(target=server.serve_forever, daemon=True))
    for w in workers:
        w.start()
    where = ", ".join(
        x
        for x in (f"vpcd {vpcd}" if vpcd else "", f"control {control_path}" if control_path else "")
        if x
    )
    typer.echo(
        f"emulating {card.model.name} serial {card.serial}" + (f" ({where})" if where else ""),
        err=True,
    )
    try:
        if sys.stdin.isatty() and sys.stdout.isatty():
            _interactive(card, stop)
        else:
            while not stop.wait(0.5):
                pass
    except KeyboardInterrupt:
        pass
    finally:
        if bridge:
            bridge.stop()
        if server:
            server.close()
        card.save()


def _interactive(card: Card, stop: threading.Event) -> None:
    shown, shown_at = "—", 0.0

    def reader() -> None:
        nonlocal shown, shown_at
        for _ in sys.stdin:
            shown, shown_at = card.press(), time.time()
        stop.set()

    threading.Thread(target=reader, daemon=True).start()
    with Live(_panel(card, shown, shown_at), refresh_per_second=4, transient=False) as live:
        while not stop.wait(0.25):
            live.update(_panel(card, shown, shown_at))


@app.command("press")
def press(
    control_path: ControlOpt, profile: Annotated[int, typer.Option(help="Molto2 profile.")] = 0
) -> None:
    """Press the button of a running emulator; print the code shown (or `no seed`)."""
    typer.echo(control.request(control_path, {"cmd": "press", "profile": profile})["display"])


@app.command("status")
def status(
    control_path: ControlOpt,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Serial, model, clock and fault settings of a running emulator (never the seed)."""
    data = control.request(control_path, {"cmd": "status"})
    if as_json:
        print_json(data)
        return
    for key, value in _human_status(data):
        typer.echo(f"{key:<16} {value}")


def _human_status(data: dict[str, object]) -> list[tuple[str, str]]:
    """The status as a person reads it: times in UTC, yes/no, nested values spelled out."""
    rows: list[tuple[str, str]] = []
    for key, value in data.items():
        label = key.replace("_", " ")
        if key == "clock" and isinstance(value, int | float):
            text = datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        elif key == "clock_offset" and isinstance(value, int | float):
            text = f"{round(value, 1) or 0.0:+.1f} s"
        elif isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, dict):
            parts = [f"{k} {'none' if v is None else v}" for k, v in value.items()]
            text = ", ".join(parts) or "none"
        elif isinstance(value, list):
            text = ", ".join(str(v) for v in value) or "none"
        elif value is None:
            text = "-"
        else:
            text = str(value)
        rows.append((label, text))
    return rows


@app.command("confirm")
def confirm(control_path: ControlOpt) -> None:
    """Press ▲ on an emulated Molto2 (commits a set-key or factory reset)."""
    typer.echo(control.request(control_path, {"cmd": "confirm"}).get("confirmed") or "nothing")


@app.command("fault")
def fault(
    control_path: ControlOpt,
    drop_on: Annotated[
        int | None, typer.Option(help="Drop the link on the Nth APDU from now.")
    ] = None,
    drop_ins: Annotated[
        str | None,
        typer.Option(
            help="Drop the link on every command with this INS (hex, e.g. C5); 'none' clears it."
        ),
    ] = None,
    delay: Annotated[float | None, typer.Option(help="Seconds before each answer.")] = None,
) -> None:
    """Inject faults into a running emulator."""
    msg: dict[str, object] = {"cmd": "fault"}
    if drop_on is not None:
        msg["drop_on"] = drop_on
    if drop_ins is not None:
        msg["drop_ins"] = None if drop_ins.lower() == "none" else drop_ins
    if delay is not None:
        msg["delay"] = delay
    print_json(control.request(control_path, msg)["faults"])
