"""What the ``keyfob admin`` command groups share (``admin.py``, ``radius.py``,
``directory.py``, ``backup.py``): the database options, the context they open, the audit actor
and ``--json``.

It imports the server stack, so only server commands import it; the light commands' helpers are
in ``cli/common.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from keyfob.server.context import ServerContext, open_context
from keyfob.server.settings import DEFAULT_DB, Settings

ACTOR = "cli:" + os.environ.get("USER", "admin")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DbOpt = Annotated[str, typer.Option("--db", envvar="KEYFOB_DB", help="Database URL.")]
KeyFileOpt = Annotated[Path | None, typer.Option(envvar="KEYFOB_KEY_FILE", help="Master key file.")]


def admin_settings(ctx: typer.Context) -> Settings:
    """The ``--db`` and ``--key-file`` given to ``keyfob admin`` (its callback stores them in
    ``ctx.obj``), with ``KEYFOB_MASTER_KEY`` from the environment."""
    node: Any = ctx
    while node is not None:
        if isinstance(node.obj, dict):
            return Settings(db=node.obj.get("db", DEFAULT_DB), key_file=node.obj.get("key_file"))
        node = node.parent
    return Settings(db=DEFAULT_DB, key_file=None)


def admin_context(ctx: typer.Context) -> ServerContext:
    return open_context(admin_settings(ctx))
