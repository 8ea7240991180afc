"""``keyfob probe-skew``: the most negative and most positive clock skew a verifier accepts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from keyfob.cli.common import print_json, warn
from keyfob.errors import KeyfobError
from keyfob.otp import Algorithm, parse_secret
from keyfob.toolset.radius import RadiusClient, RadiusTarget
from keyfob.toolset.skew import (
    Clock,
    Probe,
    ProbeTarget,
    SkewResult,
    SystemClock,
    chart,
    plot,
    search,
    table,
)
from keyfob.toolset.targets import CommandTarget, KeyfobTarget, Phase


class TargetKind(StrEnum):
    KEYFOB = "keyfob"
    COMMAND = "command"
    RADIUS = "radius"


@dataclass(frozen=True)
class RadiusOptions:
    server: str | None
    shared_secret: str | None
    user: str | None
    otp_secret: str | None
    password: str | None
    max_failures: int


class TickingClock:
    """This machine's clock, sleeping in half-second slices so that the progress bar moves
    while the RADIUS target waits for a step."""

    def __init__(self, inner: Clock | None = None) -> None:
        self.inner: Clock = inner or SystemClock()
        self.tick: Callable[[], None] = lambda: None

    def now(self) -> float:
        return self.inner.now()

    def sleep(self, seconds: float) -> None:
        end = self.inner.now() + seconds
        while (left := end - self.inner.now()) > 0:
            self.inner.sleep(min(left, 0.5))
            self.tick()


def _radius_target(opts: RadiusOptions, shape: tuple[int, int, str]) -> RadiusTarget:
    named = {
        "--server": opts.server,
        "--shared-secret": opts.shared_secret,
        "--user": opts.user,
        "--otp-secret": opts.otp_secret,
    }
    if not (opts.server and opts.shared_secret and opts.user and opts.otp_secret):
        missing = ", ".join(name for name, value in named.items() if not value)
        raise KeyfobError(
            f"--target radius needs {missing}",
            hint="e.g. --server 192.0.2.10:1812 --shared-secret S --user probe --otp-secret "
            "BASE32 (the secrets also from KEYFOB_RADIUS_SECRET and KEYFOB_OTP_SECRET)",
        )
    period, digits, algorithm = shape
    return RadiusTarget(
        RadiusClient(opts.server, opts.shared_secret),
        opts.user,
        parse_secret(opts.otp_secret),
        password=opts.password or "",
        max_failures=opts.max_failures,
        period=period,
        digits=digits,
        algorithm=Algorithm.parse(algorithm),
        clock=TickingClock(),
    )


def _target(
    kind: TargetKind,
    url: str | None,
    api_key: str | None,
    phase: Phase,
    cmd: str | None,
    shape: tuple[int, int, str],
    radius: RadiusOptions,
) -> ProbeTarget:
    if kind is TargetKind.RADIUS:
        return _radius_target(radius, shape)
    if kind is TargetKind.KEYFOB:
        if not url or not api_key:
            raise KeyfobError(
                "--target keyfob needs --url and --api-key",
                hint="an API key with the admin role: keyfob admin apikey create NAME --role admin",
            )
        return KeyfobTarget(url, api_key, phase)
    if not cmd:
        raise KeyfobError(
            "--target command needs --cmd",
            hint="e.g. --cmd 'oathtool --totp -w 2 {secret_hex} {code}'",
        )
    period, digits, algorithm = shape
    return CommandTarget(cmd, period=period, digits=digits, algorithm=Algorithm.parse(algorithm))


def _duration(seconds: float) -> str:
    whole = max(round(seconds), 0)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def _search_with_bar(target: RadiusTarget, max_steps: int) -> SkewResult:
    """The search under a progress bar on stderr. Waiting for the clock is most of the time, so
    the bar counts seconds — spent, and the target's estimate of those left — not probes."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn

    clock = target.clock
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[left]}"),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("starting", total=None, left="")
    started = clock.now()

    def tick() -> None:
        elapsed, left = clock.now() - started, target.remaining_seconds()
        bar.update(task, completed=elapsed, total=elapsed + left, left=f"~{_duration(left)} left")

    def show(p: Probe) -> None:
        answer = "accepted" if p.accepted else "refused"
        bar.console.print(f"  {p.offset_steps:+d} steps: {answer}")
        tick()

    if isinstance(clock, TickingClock):
        clock.tick = tick
    target.report = lambda text: bar.update(task, description=text)
    with bar, target:
        return search(target, max_steps, show)


def _summary(result: SkewResult) -> str:
    low, high = result.from_steps, result.to_steps
    if low is None or high is None:
        return "accepted: no offset at all (is the verifier reachable, the command right?)\n"
    limit = f" (the search stopped at --max-steps {result.max_steps})" if result.at_limit else ""
    return (
        f"accepted: {low:+d} to {high:+d} steps = {low * result.period:+d} s to "
        f"{high * result.period:+d} s{limit}\n"
    )


ServerOpt = Annotated[
    str | None,
    typer.Option(help="radius: the server, HOST:PORT or [IPv6]:PORT (port 1812 if left out)."),
]
SharedSecretOpt = Annotated[
    str | None,
    typer.Option(
        envvar="KEYFOB_RADIUS_SECRET",
        help="radius: this machine's shared secret as a client of the server (or "
        "KEYFOB_RADIUS_SECRET, out of the process list). A wrong one gets no answer at all.",
    ),
]
UserOpt = Annotated[
    str | None,
    typer.Option(
        help="radius: the user whose token is probed. Use a test user: the probes use up its "
        "codes, and a sign-in meanwhile would look like a replay."
    ),
]
OtpSecretOpt = Annotated[
    str | None,
    typer.Option(
        envvar="KEYFOB_OTP_SECRET",
        help="radius: that user's TOTP secret, base32 or hex (or KEYFOB_OTP_SECRET); its "
        "shape from --period, --digits, --algorithm.",
    ),
]
PasswordOpt = Annotated[
    str | None,
    typer.Option(
        envvar="KEYFOB_RADIUS_PASSWORD",
        help="radius: for a client in mode password+otp, the user's password, sent before "
        "the code (or KEYFOB_RADIUS_PASSWORD). Without it User-Password is the code alone "
        "(mode otp).",
    ),
]
MaxFailuresOpt = Annotated[
    int,
    typer.Option(
        min=2,
        help="radius: the verifier's lockout threshold N, the refusals in a row that lock the "
        "user (keyfob: KEYFOB_LOCKOUT_THRESHOLD, 5). At most N-2 probes (at least 1) are "
        "refused in a row before the current code clears the count, so that a refused "
        "current code, which stops the probe, still leaves the user short of N (N >= 3).",
    ),
]


def probe_skew(
    target: Annotated[
        TargetKind,
        typer.Option(
            help="keyfob: a keyfob server's REST API. command: any verifier a shell command "
            "calls. radius: one user through a RADIUS server (PAP with Message-Authenticator); "
            "its secret is fixed, so codes only move forward in time, and the current code "
            "goes in between wherever the verifier's memory (replay, learned drift, failure "
            "count, resync) would bias a probe: a window of ±w takes about (w+1)(w+3) steps "
            "(4 min for ±1, 72 min for ±10), shown with a progress bar and the time left."
        ),
    ],
    url: Annotated[
        str | None, typer.Option(help="keyfob: the server, e.g. http://host:8400.")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="KEYFOB_API_KEY", help="keyfob: an admin API key (or KEYFOB_API_KEY)."),
    ] = None,
    phase: Annotated[
        Phase,
        typer.Option(
            help="keyfob: steady = the window of a code after enrolment (KEYFOB_WINDOW); "
            "enrol = the window of the activation code itself (±15 by design). In steady, "
            "offset -k can only be tried k+1 steps after its enrolment (earlier it is a replay), "
            "so the negative side takes (window + 2) x 30 s."
        ),
    ] = Phase.STEADY,
    cmd: Annotated[
        str | None,
        typer.Option(
            help="command: a shell command with {secret} (base32), {secret_hex}, {code}, "
            "{period}, {digits}; exit status 0 = accepted. A fresh random secret each probe."
        ),
    ] = None,
    server: ServerOpt = None,
    shared_secret: SharedSecretOpt = None,
    user: UserOpt = None,
    otp_secret: OtpSecretOpt = None,
    password: PasswordOpt = None,
    max_failures: MaxFailuresOpt = 5,
    period: Annotated[int, typer.Option(help="command, radius: the time step in seconds.")] = 30,
    digits: Annotated[int, typer.Option(help="command, radius: code length.")] = 6,
    algorithm: Annotated[
        str, typer.Option(help="command, radius: SHA1, SHA256 or SHA512.")
    ] = "SHA1",
    max_steps: Annotated[
        int,
        typer.Option(
            min=1,
            max=2880,
            help="Search each direction up to this many time steps; it stops earlier at the "
            "first refused offset after an accepted one.",
        ),
    ] = 40,
    plot_file: Annotated[
        Path | None, typer.Option("--plot", help="Also draw the probes into this PNG (matplotlib).")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='Print {"target", "from_steps", "to_steps", "from_seconds", "to_seconds", '
            '"probes": [{"offset_steps", "accepted"}]}; offsets are time steps (and seconds) '
            "from this machine's clock, negative = a token clock behind.",
        ),
    ] = False,
) -> None:
    """Find the most negative and most positive time-step offset a verifier accepts.

    An offset of +k steps is a code the verifier would expect k x period seconds from now (a
    token whose clock runs ahead); -k one from k steps ago. Offset 0 is probed first, then each
    direction outward until the first refusal after an acceptance.
    """
    radius = RadiusOptions(server, shared_secret, user, otp_secret, password, max_failures)
    probe = _target(target, url, api_key, phase, cmd, (period, digits, algorithm), radius)
    probe.report = lambda text: typer.echo(f"  {text}", err=True)

    def progress(p: object) -> None:
        offset = getattr(p, "offset_steps", 0)
        answer = "accepted" if getattr(p, "accepted", False) else "refused"
        typer.echo(f"  {offset:+d} steps: {answer}", err=True)

    if isinstance(probe, RadiusTarget):
        result = _search_with_bar(probe, max_steps)
    else:
        with probe:
            result = search(probe, max_steps, progress)
    if isinstance(probe, KeyfobTarget) and probe.users_left:
        warn(
            f"{len(probe.users_left)} temporary user(s) probe-skew-{probe.run_id}-* could not be "
            "deleted; remove them with keyfob admin user delete"
        )
    if isinstance(probe, KeyfobTarget) and probe.cleanup_failures:
        warn(f"{probe.cleanup_failures} probe method(s) could not be deleted; remove them by hand")
    if plot_file is not None:
        plot(result, str(plot_file))
    if as_json:
        print_json(result.as_json())
        return
    typer.echo(table(result) + "\n" + chart(result) + "\n" + _summary(result), nl=False)
