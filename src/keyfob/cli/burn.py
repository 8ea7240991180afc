"""``keyfob burn``: put a TOTP secret into a programmable token (one, or a batch)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from typer.core import TyperGroup

from keyfob.burn.batch import BatchOptions, read_users, run_batch, summary, write_outputs
from keyfob.burn.burner import BurnOptions
from keyfob.burn.enroll import EnrollClient
from keyfob.burn.errors import BurnRefused, NoCodeTyped
from keyfob.burn.flow import Enrol, TokenJob, TokenOutcome, burn_token
from keyfob.burn.journal import Journal
from keyfob.burn.reader import open_reader
from keyfob.burn.source import credential_from
from keyfob.cli.common import print_json
from keyfob.otp import Algorithm, Credential
from keyfob.token.models import Family

err = Console(stderr=True, highlight=False)


class _DefaultToOne(TyperGroup):
    """``keyfob burn SOURCE`` and ``keyfob burn batch FILE`` side by side: anything that is not
    a subcommand goes to the hidden single-token command."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["one", *args]
        return super().parse_args(ctx, args)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """``keyfob burn --help``: how to burn one token (its usage and every option), then
        the ``batch`` subcommand."""
        one = self.commands["one"]
        one_ctx = type(ctx)(one, info_name=ctx.info_name, parent=ctx.parent)
        one.format_help(one_ctx, formatter)
        rows = [(n, c.get_short_help_str()) for n, c in self.commands.items() if not c.hidden]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    cls=_DefaultToOne,
    no_args_is_help=True,
    help="Burn a TOTP secret into a programmable token: `keyfob burn SOURCE` "
    "(QR image, otpauth:// URI, - for stdin, or --seed) or `keyfob burn batch "
    "USERS.csv`.",
)


class CliUi:
    """Messages on stderr; codes read from the terminal (or stdin)."""

    def say(self, message: str) -> None:
        err.print(message)

    def warn(self, message: str) -> None:
        err.print(f"[yellow]{message}[/yellow]")

    def ask_code(self, prompt: str) -> str:
        err.print(f"{prompt}: ", end="")
        line = sys.stdin.readline()
        if not line:
            raise NoCodeTyped("standard input is closed")
        return line.strip()


ReaderOpt = Annotated[str | None, typer.Option("--reader", help="Reader name or index.")]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option("--api-key", envvar="KEYFOB_API_KEY", help="Admin API key of the server."),
]
PasswordOpt = Annotated[
    str | None,
    typer.Option(
        "--user-password",
        envvar="KEYFOB_PASSWORD",
        help="The user's own sign-in password (instead of --api-key), with --enroll.",
    ),
]
OldPasswordOpt = Annotated[str | None, typer.Option("--password", hidden=True)]


def _family(profile: int | None, title: str | None, molto2: bool) -> Family:
    return Family.MOLTO2 if (profile is not None or title is not None or molto2) else Family.SINGLE


@app.command("one", hidden=True)
def one(
    source: Annotated[
        str | None,
        typer.Argument(
            metavar="SOURCE", help="QR image, otpauth:// URI, or - (read a URI or path from stdin)"
        ),
    ] = None,
    seed: Annotated[str | None, typer.Option(help="A typed seed, base32 or hex.")] = None,
    algorithm: Annotated[str | None, typer.Option(help="SHA1 or SHA256 (with --seed).")] = None,
    period: Annotated[int | None, typer.Option(help="30 or 60 (with --seed).")] = None,
    account: Annotated[str | None, typer.Option(help="Which account of an export.")] = None,
    allow_short: Annotated[
        bool, typer.Option("--allow-short", help="Accept < 80-bit seeds.")
    ] = False,
    reader: ReaderOpt = None,
    profile: Annotated[
        int | None, typer.Option(help="Molto2 profile (default: first free).")
    ] = None,
    title: Annotated[str | None, typer.Option(help="Molto2 profile title (12 bytes).")] = None,
    molto2: Annotated[bool, typer.Option("--molto2", help="The token is a Molto2.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an occupied Molto2 profile.")] = False,
    customer_key: Annotated[str | None, typer.Option(help="Molto2 customer key.")] = None,
    no_check: Annotated[
        bool, typer.Option("--no-check", help="Skip the typed-code check.")
    ] = False,
    enroll: Annotated[
        str | None,
        typer.Option(
            "--enroll",
            metavar="URL",
            help="Enrol on this keyfob server (the server makes the secret).",
        ),
    ] = None,
    user: Annotated[str | None, typer.Option(help="The user to enrol (with --enroll).")] = None,
    api_key: ApiKeyOpt = None,
    password: PasswordOpt = None,
    old_password: OldPasswordOpt = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for a token on the reader.")] = 15.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Burn one token: `keyfob burn SOURCE` (a QR image, an otpauth:// URI, or - for stdin),
    `keyfob burn --seed BASE32`, or `keyfob burn --enroll URL --user NAME` (the server makes
    the secret). Many tokens: `keyfob burn batch USERS.csv`."""
    family = _family(profile, title, molto2)
    opts = BurnOptions(family=family, profile=profile, title=title, overwrite=overwrite)
    if customer_key:
        opts.customer_key = customer_key.encode()
    client = None
    if enroll:
        if source or seed:
            raise BurnRefused(
                "with --enroll the server makes the secret", hint="leave out SOURCE and --seed"
            )
        if not user:
            raise BurnRefused("--enroll needs --user NAME")
        alg = Algorithm.parse(algorithm or "SHA1")
        client = EnrollClient(
            enroll, api_key=api_key, username=user, password=password or old_password
        )
        what: Credential | Enrol = Enrol(client, user, algorithm=alg, period=period or 30)
    else:
        text = sys.stdin.readline().strip() if source == "-" else source
        what = credential_from(
            text,
            seed=seed,
            algorithm=algorithm,
            period=period,
            account=account,
            allow_short=allow_short,
        )
    job = TokenJob(what, options=opts, check=not no_check)
    try:
        outcome = burn_token(job, lambda: open_reader(reader, wait), CliUi())
    finally:
        if client is not None:
            client.close()
    if as_json:
        print_json(_report(outcome))


def _report(outcome: TokenOutcome) -> dict[str, Any]:
    """``--json``: what was burned, how far off its clock was, and what the server said."""
    burned, check = outcome.burned, outcome.check
    report: dict[str, Any] = {
        "serial": burned.serial,
        "model": burned.model,
        "profile": burned.profile,
        "clock_offset_before": burned.clock_offset_before,
    }
    if check is not None:
        report["check"] = check.describe(outcome.credential.period)
        report["clock_offset_steps"] = check.step_offset
    if outcome.enrolled is not None:
        report["enrolled"] = outcome.enrolled
    return report


@app.command("batch")
def batch(
    users: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV: upn[,label] per line.")
    ],
    enroll: Annotated[
        str | None, typer.Option("--enroll", metavar="URL", help="Enrol each token on this server.")
    ] = None,
    api_key: ApiKeyOpt = None,
    out: Annotated[
        Path | None, typer.Option(help="Write entra.csv and tokens.pskcxml here.")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            "--pskc-password",
            envvar="KEYFOB_EXPORT_PASSWORD",
            help="Password to encrypt the PSKC file (and the journal) with, with --out.",
        ),
    ] = None,
    old_password: OldPasswordOpt = None,
    journal_path: Annotated[Path | None, typer.Option("--journal", help="Resume journal.")] = None,
    algorithm: Annotated[str, typer.Option(help="SHA1 or SHA256.")] = "SHA1",
    period: Annotated[int, typer.Option(help="30 or 60.")] = 30,
    reader: ReaderOpt = None,
    force: Annotated[bool, typer.Option(help="Allow a serial the journal already used.")] = False,
    no_check: Annotated[
        bool,
        typer.Option(
            "--no-check",
            help="Do not ask for each token's code (enrolment then uses the code "
            "computed from the secret).",
        ),
    ] = False,
    wait_timeout: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for each next token on the reader.")
    ] = 600.0,
    old_wait: Annotated[float | None, typer.Option("--wait-timeout", hidden=True)] = None,
) -> None:
    """Burn (and enrol) a token per user; resumable; writes Entra CSV + PSKC with --out."""
    password = password or old_password
    wait_timeout = old_wait if old_wait is not None else wait_timeout
    if not enroll and not out:
        raise BurnRefused(
            "a batch needs --enroll URL or --out DIR (or both)",
            hint="otherwise the secrets would be lost",
        )
    if out and not password:
        raise BurnRefused("--out needs --pskc-password for the PSKC file (and the journal)")
    rows = read_users(users)
    journal_file = journal_path or (
        (out / "journal.jsonl") if out else users.with_name(users.name + ".journal")
    )
    journal = Journal.open(journal_file, password if out else None)
    client = EnrollClient(enroll, api_key=api_key) if enroll else None
    opts = BatchOptions(
        algorithm=Algorithm.parse(algorithm),
        period=period,
        check=not no_check,
        force=force,
        wait_timeout=wait_timeout,
    )
    ui = CliUi()
    progress = Progress(
        TextColumn("[bold]burning"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=err,
        transient=False,
    )
    already = len([r for r in rows if r.user in journal.done()])
    try:
        with progress:
            task = progress.add_task("", total=len(rows), completed=already)
            run_batch(
                rows,
                journal,
                lambda: open_reader(reader, 0),
                ui,
                opts,
                enroll=client,
                on_row=lambda row, e: progress.update(task, advance=1, description=row.user),
            )
    finally:
        if client is not None:
            client.close()
        table = Table(title="keyfob burn batch")
        for col in ("line", "user", "serial", "status"):
            table.add_column(col)
        for item in summary(rows, journal):
            table.add_row(str(item["line"]), item["user"], item["serial"] or "-", item["status"])
        err.print(table)
    if out and password:
        entra, pskc = write_outputs(rows, journal, out, password)
        ui.say(f"wrote {entra} (upload to Entra ID) and {pskc} (encrypted)")
