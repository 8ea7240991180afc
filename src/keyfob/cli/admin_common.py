"""What the ``keyfob admin`` command groups share (``admin.py``, ``radius.py``,
``directory.py``, ``backup.py``): the database options, the context they open, the audit actor
and ``--json``.

It imports the server stack, so only server commands import it; the light commands' helpers are
in ``cli/common.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from keyfob.cli.common import print_json
from keyfob.server.configfile import CONFIG_ENV, Config, find_config, search_paths
from keyfob.server.context import ServerContext, open_context
from keyfob.server.settings import DEFAULT_DB, Settings
from keyfob.server.store.db import NoDatabase
from keyfob.server.store.records import TokenRecord
from keyfob.server.views import token_view

ACTOR = "cli:" + os.environ.get("USER", "admin")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DbOpt = Annotated[str, typer.Option("--db", envvar="KEYFOB_DB", help="Database URL.")]
KeyFileOpt = Annotated[Path | None, typer.Option(envvar="KEYFOB_KEY_FILE", help="Master key file.")]


ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar=CONFIG_ENV,
        help="keyfob.toml to read (default: ~/.config/keyfob/keyfob.toml, else "
        "/etc/keyfob/keyfob.toml).",
    ),
]
AdminDbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="KEYFOB_DB",
        help="The server's database URL (default: db in the config file, else ./keyfob.db). "
        "Admin commands never create one.",
    ),
]
# The group's own options, which may also come after the subcommand
# (`keyfob admin user list --db …`): AdminGroup moves them in front.
GROUP_OPTIONS = ("--db", "--key-file", "--config")


class AdminGroup(TyperGroup):
    """``keyfob admin``: its ``--db``, ``--key-file`` and ``--config`` are taken wherever they
    stand on the line, before or after the subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_options(args, GROUP_OPTIONS))


def hoist_options(args: list[str], names: tuple[str, ...]) -> list[str]:
    """``args`` with ``names`` (``--db X`` or ``--db=X``) moved to the front; nothing after a
    ``--`` moves."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg in names and i + 1 < len(args):
            front += args[i : i + 2]
            i += 2
            continue
        if arg.split("=", 1)[0] in names and "=" in arg:
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def _group_options(ctx: typer.Context) -> dict[str, Any]:
    """What ``keyfob admin``'s callback stored in ``ctx.obj``."""
    node: Any = ctx
    while node is not None:
        if isinstance(node.obj, dict):
            return node.obj
        node = node.parent
    return {}


def admin_config(ctx: typer.Context) -> Config:
    return find_config(_group_options(ctx).get("config"))


def admin_settings(ctx: typer.Context) -> Settings:
    """The settings of the server the admin commands act on: ``--db`` / ``--key-file`` (or
    ``KEYFOB_DB`` / ``KEYFOB_KEY_FILE``), else the config file's, else ``./keyfob.db``; with
    ``KEYFOB_MASTER_KEY`` from the environment."""
    opts = _group_options(ctx)
    return admin_config(ctx).settings(db=opts.get("db"), key_file=opts.get("key_file"))


def admin_context(ctx: typer.Context) -> ServerContext:
    """The context of an existing database: an admin command never creates one. Without one
    where it looks it fails and says where it looked and how to point it."""
    settings = admin_settings(ctx)
    try:
        return open_context(settings, create=False)
    except NoDatabase as exc:
        raise NoDatabase(exc.message + _looked(ctx, settings), hint=exc.hint) from None


def _looked(ctx: typer.Context, settings: Settings) -> str:
    opts = _group_options(ctx)
    if opts.get("db"):
        return " (from --db or KEYFOB_DB)"
    config = admin_config(ctx)
    if config.path is not None and "db" in config.values:
        return f" (db in {config.path})"
    places = " or ".join(str(p) for p in search_paths())
    where = os.getcwd()
    default = "" if settings.db != DEFAULT_DB else f", so ./keyfob.db in {where}"
    return f" (no --db, no KEYFOB_DB, no db in a config file at {places}{default})"


def said(as_json: bool, data: object, line: str) -> None:
    """``--json``: the data; else ``line`` (one or more lines for a person)."""
    if as_json:
        print_json(data)
    else:
        typer.echo(line)


def token_action(
    ctx: typer.Context,
    as_json: bool,
    line: str,
    service: Callable[..., TokenRecord],
    ref: str,
    *args: Any,
) -> None:
    """``service(server, ref, *args)`` as the administrator, then the token (``--json``) or
    ``line``."""
    server = admin_context(ctx)
    token = service(server, ref, *args, actor=ACTOR)
    said(as_json, token_view(token, server.now()), line)
