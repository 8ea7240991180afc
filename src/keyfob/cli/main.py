"""The ``keyfob`` entry point: assembles the command groups and turns errors into one line.

Every :class:`~keyfob.errors.KeyfobError` becomes ``keyfob: error: <what> (<what to do>)`` on
stderr with exit code 1 — never a traceback, and never a secret.
"""

from __future__ import annotations

import sys

import typer

from keyfob import __version__
from keyfob.cli import admin as admin_cmd
from keyfob.cli import burn as burn_cmd
from keyfob.cli import code as code_cmd
from keyfob.cli import emulator as emulator_cmd
from keyfob.cli import qr as qr_cmd
from keyfob.cli import serve as serve_cmd
from keyfob.cli import token as token_cmd
from keyfob.cli import uri as uri_cmd
from keyfob.errors import KeyfobError

app = typer.Typer(
    name="keyfob",
    help="Hardware OTP tokens for MFA: codes, QR codes, seed files, tokens, and the server.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("code")(code_cmd.code)
app.add_typer(uri_cmd.app, name="uri")
app.add_typer(qr_cmd.app, name="qr")
app.command("serve")(serve_cmd.serve)
app.add_typer(admin_cmd.app, name="admin")
app.add_typer(emulator_cmd.app, name="emulator")
app.add_typer(token_cmd.app, name="token")
app.add_typer(burn_cmd.app, name="burn")


@app.command("version")
def version() -> None:
    """Print keyfob's version."""
    typer.echo(__version__)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this directly)."""
    try:
        # Standalone mode: typer prints usage errors itself and ends with SystemExit.
        app(args=argv, prog_name="keyfob")
    except SystemExit as exc:
        if exc.code is None:
            return 0
        return exc.code if isinstance(exc.code, int) else 1
    except KeyfobError as exc:
        print(f"keyfob: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 141
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
