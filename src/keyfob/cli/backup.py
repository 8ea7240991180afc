"""``keyfob admin backup`` / ``keyfob admin restore``: encrypted backups of a SQLite server
(the format and every check are in keyfob.server.backup)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keyfob.cli.admin_common import admin_settings
from keyfob.cli.common import read_secret
from keyfob.server.backup import (
    check_passphrase,
    create_backup,
    held_keys,
    restore_backup,
)

PASSPHRASE_ENV = "KEYFOB_BACKUP_PASSPHRASE"
PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        exists=True,
        dir_okay=False,
        readable=True,
        help=f"Read the passphrase from this file (first line). Else ${PASSPHRASE_ENV}, else a "
        "prompt.",
    ),
]


def _passphrase(path: Path | None, *, confirm: bool) -> str:
    return check_passphrase(read_secret("backup passphrase", path, PASSPHRASE_ENV, confirm=confirm))


def backup(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(dir_okay=False, help="The backup file to write.")],
    without_keys: Annotated[
        bool,
        typer.Option(
            "--without-keys",
            help="Leave the master keys out: the backup alone then opens no secret; keep the "
            "key file somewhere else and give it to restore.",
        ),
    ] = False,
    passphrase_file: PassphraseFile = None,
) -> None:
    """Write an encrypted, consistent backup of a SQLite database (safe while servers run).

    PostgreSQL: use pg_dump (README: Backup and restore)."""
    settings = admin_settings(ctx)
    env_keys = settings.master_key.get_secret_value() if settings.master_key else None
    keys = held_keys(settings.resolved_key_file(), env_keys)
    passphrase = _passphrase(passphrase_file, confirm=True)
    info = create_backup(settings.db, file, passphrase, keys=keys, with_keys=not without_keys)
    what = "without master keys" if without_keys else "with master keys"
    typer.echo(
        f"wrote {file} (mode 0600; {info.users} user(s), {info.tokens} token(s), {what}; "
        f"needs key id(s) {', '.join(info.key_ids) or 'none'})"
    )


def restore(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace a database that holds data (stop its servers)."),
    ] = False,
    passphrase_file: PassphraseFile = None,
) -> None:
    """Restore a backup into --db (a new folder, or an empty database unless --force); its
    master keys go into --key-file (default: beside the database). Everything is checked,
    every secret opened, before the database is replaced."""
    settings = admin_settings(ctx)
    env_keys = settings.master_key.get_secret_value() if settings.master_key else None
    report = restore_backup(
        file,
        _passphrase(passphrase_file, confirm=False),
        db_url=settings.db,
        key_file=settings.resolved_key_file(),
        env_keys=env_keys,
        force=force,
    )
    added = (
        f", {len(report.keys_added)} key(s) added to {report.key_file}" if report.keys_added else ""
    )
    typer.echo(
        f"restored {report.database}: {report.users} user(s), {report.tokens} token(s), "
        f"{report.secrets_opened} secret(s) checked{added}"
    )
