"""``keyfob admin``: manage users, API keys, the token inventory and the master key, directly on
the database (the server may be running or stopped)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from keyfob.cli import backup as backup_cli
from keyfob.cli.admin_common import ACTOR, DbOpt, JsonOpt, KeyFileOpt, admin_context
from keyfob.cli.common import print_json
from keyfob.cli.directory import directory_app
from keyfob.cli.radius import client_app as radius_client_app
from keyfob.server import accounts, inventory
from keyfob.server.inputs import filter_word
from keyfob.server.keyrotation import rotate_key
from keyfob.server.settings import DEFAULT_DB
from keyfob.server.store.records import TokenFilter
from keyfob.server.store.vocab import TokenKind, TokenStatus
from keyfob.server.views import api_key_view, token_view, tokens_view, user_view

app = typer.Typer(help="Administer users, API keys, tokens and keys.", no_args_is_help=True)
user_app = typer.Typer(help="Users.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys.", no_args_is_help=True)
tokens_app = typer.Typer(help="The token inventory.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(apikey_app, name="apikey")
app.add_typer(tokens_app, name="tokens")
app.add_typer(radius_client_app, name="radius-client")
app.add_typer(directory_app, name="directory")
app.command("backup")(backup_cli.backup)  # cli/backup.py: encrypted SQLite backups
app.command("restore")(backup_cli.restore)


@app.callback()
def _options(ctx: typer.Context, db: DbOpt = DEFAULT_DB, key_file: KeyFileOpt = None) -> None:
    ctx.obj = {"db": db, "key_file": key_file}  # read back by admin_common.admin_settings


# --- users -------------------------------------------------------------------------------


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="User principal name, e.g. alice@example.com.")],
    password: Annotated[
        str | None,
        typer.Option(
            help="One-time password (the user sets their own at first sign-in); "
            "default: generate one."
        ),
    ] = None,
    role: Annotated[str, typer.Option(help="user or admin.")] = "user",
    display_name: Annotated[str, typer.Option(help="Full name.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Add a user with a one-time password."""
    generated = password is None
    password = password or accounts.generate_password()
    user = accounts.create_user(
        admin_context(ctx),
        username,
        password=password,
        role=role,
        display_name=display_name,
        actor=ACTOR,
    )
    if as_json:
        data = user_view(user)
        if generated:
            data["one_time_password"] = password
        print_json(data)
    else:
        typer.echo(f"added {user.username} ({user.role})")
        if generated:
            typer.echo(f"one-time password: {password}")


@user_app.command("list")
def user_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List users."""
    users = accounts.list_users(admin_context(ctx))
    if as_json:
        print_json([user_view(u) for u in users])
        return
    for u in users:
        flags = " disabled" if u.disabled else ""
        typer.echo(f"{u.username:<40} {u.role:<6}{flags}")


@user_app.command("disable")
def user_disable(ctx: typer.Context, username: str) -> None:
    """Disable a user (validation then rejects every code)."""
    user = accounts.set_disabled(admin_context(ctx), username, True, actor=ACTOR)
    typer.echo(f"disabled {user.username}")


@user_app.command("enable")
def user_enable(ctx: typer.Context, username: str) -> None:
    """Enable a disabled user."""
    user = accounts.set_disabled(admin_context(ctx), username, False, actor=ACTOR)
    typer.echo(f"enabled {user.username}")


# --- API keys ----------------------------------------------------------------------------


@apikey_app.command("create")
def apikey_create(
    ctx: typer.Context,
    role: Annotated[str, typer.Option(help="validate (for apps and VPNs) or admin.")],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create an API key; it is shown once."""
    key, secret = accounts.create_api_key(admin_context(ctx), name, role, actor=ACTOR)
    if as_json:
        print_json({"name": key.name, "role": key.role, "key": secret})
    else:
        typer.echo(f"API key {key.name!r} ({key.role}); shown once, store it now:")
        typer.echo(secret)


@apikey_app.command("list")
def apikey_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List API keys (never the keys themselves)."""
    keys = [api_key_view(k) for k in accounts.list_api_keys(admin_context(ctx))]
    if as_json:
        print_json(keys)
        return
    typer.echo(f"{'ID':<12}  {'ROLE':<8}  {'LAST USED':<16}  {'REVOKED':<16}  NAME")
    for k in keys:
        used, revoked = _minute(k["last_used_at"]) or "never", _minute(k["revoked_at"]) or "-"
        typer.echo(f"{k['id']:<12}  {k['role']:<8}  {used:<16}  {revoked:<16}  {k['name']}")


def _minute(iso: str | None) -> str | None:
    """``2027-01-15T08:00:00+00:00`` -> ``2027-01-15 08:00`` (UTC), for the table."""
    return iso[:16].replace("T", " ") if iso else None


@apikey_app.command("revoke")
def apikey_revoke(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(metavar="ID_OR_NAME", help="The key's id or name.")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke an API key: every running server refuses it from its next request."""
    revoked = api_key_view(accounts.revoke_api_key(admin_context(ctx), key, actor=ACTOR))
    if as_json:
        print_json(revoked)
    else:
        typer.echo(f"revoked API key {revoked['id']} ({revoked['name']!r}, {revoked['role']})")


# --- tokens ------------------------------------------------------------------------------


@tokens_app.command("import")
def tokens_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="pskc, azure-csv, oath-csv (vendor-csv) or otpauth; default: detect."
        ),
    ] = None,
    password: Annotated[str | None, typer.Option(help="PSKC password (PBKDF2).")] = None,
    key: Annotated[str | None, typer.Option(help="PSKC pre-shared key, hex.")] = None,
    mac_check: Annotated[str, typer.Option(help="strict, soft or none.")] = "strict",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row, import nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import a seed file, all or nothing; re-importing is idempotent by serial."""
    with file.open("rb") as stream:  # read as it goes: a 20 MB CSV is never in memory whole
        report = inventory.import_seeds(
            admin_context(ctx),
            stream,
            fmt=fmt,
            source=file.name,
            password=password,
            key=key,
            mac_check=mac_check,
            dry_run=dry_run,
            actor=ACTOR,
        )
    data = report.as_dict() if as_json else report.summary()
    if as_json:
        print_json(data)
    else:
        for row in report.rows:
            if row.action in ("error", "warning") or dry_run:
                what = row.serial or ""
                hint = f" — {row.hint}" if row.hint else ""
                typer.echo(f"{row.where:<24} {row.action:<9} {what} {row.message}{hint}".rstrip())
        verdict = (
            "dry run: nothing imported"
            if dry_run
            else f"imported {data['created']} token(s)"
            if report.ok
            else "nothing imported"
        )
        typer.echo(
            f"{verdict}; {data['created']} new, {data['unchanged']} unchanged, "
            f"{data['errors']} error(s)"
        )
        if report.created_users:
            typer.echo(f"users created for assignment: {', '.join(report.created_users)}")
    if not report.ok:
        raise typer.Exit(1)


@tokens_app.command("export")
def tokens_export(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="azure-csv or pskc.")] = "azure-csv",
    password: Annotated[str | None, typer.Option(help="Password for the PSKC file.")] = None,
    assigned_only: Annotated[bool, typer.Option(help="Only assigned tokens.")] = False,
) -> None:
    """Export classic tokens: Entra CSV (upload to Azure) or encrypted PSKC."""
    data = inventory.export(
        admin_context(ctx), fmt, password=password, assigned_only=assigned_only, actor=ACTOR
    )
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    typer.echo(f"wrote {output} (mode 0600: it holds token secrets)")


@tokens_app.command("list")
def tokens_list(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="pending, active or disabled.")] = None,
    kind: Annotated[str | None, typer.Option(help="app, programmable or classic.")] = None,
    owner: Annotated[str | None, typer.Option(help="Username.")] = None,
    unassigned: Annotated[bool, typer.Option("--unassigned", help="Only the inventory.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """List tokens with owner, state, drift and last use."""
    hint = "see keyfob admin tokens list --help"
    where = TokenFilter(
        filter_word(TokenStatus, state, "state", hint=hint),
        filter_word(TokenKind, kind, "kind", hint=hint),
        owner,
        assigned=False if unassigned else None,
    )
    server = admin_context(ctx)
    data = tokens_view(inventory.list_inventory(server, where, limit=limit), server.now())
    if as_json:
        print_json(data)
        return
    for t in data["items"]:
        lock = " LOCKED" if t["locked"] else ""
        typer.echo(
            f"{t['serial'] or '-':<16} {t['kind']:<12} {t['owner'] or '(inventory)':<30} "
            f"{t['state']:<8} drift {t['drift_seconds']:+d}s "
            f"last used {t['last_used_at'] or 'never'}{lock}"
        )
    typer.echo(f"{data['total']} token(s)", err=True)


@tokens_app.command("assign")
def tokens_assign(ctx: typer.Context, serial: str, username: str) -> None:
    """Assign an inventory token to a user."""
    inventory.assign(admin_context(ctx), serial, username, actor=ACTOR)
    typer.echo(f"assigned {serial} to {username}")


@tokens_app.command("unassign")
def tokens_unassign(ctx: typer.Context, serial: str) -> None:
    """Return a token to the inventory (for re-use when its owner leaves)."""
    inventory.unassign(admin_context(ctx), serial, actor=ACTOR)
    typer.echo(f"unassigned {serial}")


@tokens_app.command("unlock")
def tokens_unlock(ctx: typer.Context, serial: str) -> None:
    """Clear a token's lockout."""
    inventory.unlock_token(admin_context(ctx), serial, actor=ACTOR)
    typer.echo(f"unlocked {serial}")


@tokens_app.command("resync")
def tokens_resync(ctx: typer.Context, serial: str, code1: str, code2: str) -> None:
    """Resynchronise a token with two consecutive codes."""
    server = admin_context(ctx)
    token = inventory.resync_token(server, serial, code1, code2, actor=ACTOR)
    view = token_view(token, server.now())
    typer.echo(f"resynchronised {serial}: drift {view['drift_seconds']:+d}s")


@app.command("rotate-key")
def rotate(
    ctx: typer.Context,
    wait: Annotated[
        float,
        typer.Option(
            help="Seconds to wait for every running server to hold the new key before "
            "refusing (servers on the same key file pick it up within one heartbeat)."
        ),
    ] = 30.0,
) -> None:
    """Re-encrypt every stored secret under a new master key; safe while servers run.

    The new key is added to the key file (old keys stay until no row needs them), every live
    server must hold it, then one transaction switches and re-encrypts. Killed at any point,
    run it again. With KEYFOB_MASTER_KEY, give the new key in KEYFOB_NEW_MASTER_KEY and start
    the servers with KEYFOB_MASTER_KEY=<new>,<old> first."""
    report = rotate_key(
        admin_context(ctx), new_env_key=os.environ.get("KEYFOB_NEW_MASTER_KEY"), wait=wait
    )
    typer.echo(json.dumps(report.as_dict()))
