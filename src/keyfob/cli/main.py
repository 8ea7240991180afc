"""The ``keyfob`` entry point: a table of command groups loaded on demand, and one error line.

Command groups are named here with a one-line summary and the module that defines them (pip's
``commands_dict`` + ``create_command``): a command's module — and with it SQLAlchemy, FastAPI,
pyscard or the QR stack — is imported only when that command runs, so ``keyfob code`` starts in
tens of milliseconds and ``keyfob --help`` reads nothing but this table.

Every :class:`~keyfob.errors.KeyfobError` becomes ``keyfob: error: <what> (<what to do>)`` on
stderr with exit code 1 — never a traceback, and never a secret.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:  # typer vendors click; only its types are needed here
    from typer._click import Command, Context, HelpFormatter

from keyfob import __version__
from keyfob.errors import KeyfobError


@dataclass(frozen=True)
class CommandSpec:
    module: str
    attribute: str  # a function (one command) or a typer.Typer (a group)
    summary: str


COMMANDS: dict[str, CommandSpec] = {
    "code": CommandSpec("keyfob.cli.code", "code", "Compute a TOTP/HOTP code, like oathtool."),
    "uri": CommandSpec("keyfob.cli.uri", "app", "Inspect otpauth:// URIs and QR screenshots."),
    "qr": CommandSpec("keyfob.cli.qr", "app", "Decode QR images; encode URIs as QR codes."),
    "serve": CommandSpec("keyfob.cli.serve", "serve", "Run the MFA server."),
    "admin": CommandSpec("keyfob.cli.admin", "app", "Administer users, API keys, tokens, keys."),
    "emulator": CommandSpec("keyfob.cli.emulator", "app", "Run an emulated programmable token."),
    "token": CommandSpec("keyfob.cli.token", "app", "Talk to a programmable token over PC/SC."),
    "burn": CommandSpec("keyfob.cli.burn", "app", "Write a seed into programmable tokens."),
    "convert": CommandSpec("keyfob.cli.convert", "convert_cmd", "Convert seed files."),
    "probe-skew": CommandSpec("keyfob.cli.probe", "probe_skew", "Probe a verifier's skew."),
    "drift": CommandSpec("keyfob.cli.drift", "drift", "Measure a token's clock drift."),
    "radius": CommandSpec("keyfob.cli.radius", "radius", "Run the RADIUS server on its own."),
}


def create_command(name: str) -> Command:
    """Import the command's module and turn its typer object into a click command."""
    spec = COMMANDS[name]
    obj = getattr(importlib.import_module(spec.module), spec.attribute)
    command: Command
    if isinstance(obj, typer.Typer):
        command = typer.main.get_group(obj)
    else:
        single = typer.Typer(pretty_exceptions_enable=False, rich_markup_mode=None)
        single.command(name)(obj)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """A group whose listed commands come from :data:`COMMANDS` and load on first use."""

    def list_commands(self, ctx: Context) -> list[str]:
        return [*COMMANDS, *super().list_commands(ctx)]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name in COMMANDS:
            return create_command(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        """The summaries from the table, so that ``--help`` imports no command module."""
        rows = [(name, spec.summary) for name, spec in COMMANDS.items()]
        rows += [(n, self.commands[n].get_short_help_str()) for n in super().list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    name="keyfob",
    cls=LazyGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


@app.callback()
def _root() -> None:
    """Hardware OTP tokens for MFA: codes, QR codes, seed files, tokens, and the server."""


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
