"""``keyfob admin``: manage users, API keys, the token inventory and the master key, directly on
the database (the server may be running or stopped)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import make_url

from keyfob.cli import backup as backup_cli
from keyfob.cli import helpdesk as helpdesk_cli
from keyfob.cli import tap as tap_cli
from keyfob.cli.admin_common import (
    ACTOR,
    AdminDbOpt,
    AdminGroup,
    ConfigOpt,
    JsonOpt,
    KeyFileOpt,
    admin_context,
    admin_settings,
    said,
    token_action,
)
from keyfob.cli.common import print_json, print_json_rows
from keyfob.cli.directory import directory_app
from keyfob.cli.radius import client_app as radius_client_app
from keyfob.server import accounts, inventory
from keyfob.server.context import open_context
from keyfob.server.enrolment import list_methods
from keyfob.server.inputs import MAX_LIMIT, MAX_OFFSET, filter_word
from keyfob.server.keyrotation import rotate_key
from keyfob.server.store.records import TokenFilter, UserFilter
from keyfob.server.store.vocab import Role, TokenKind, TokenStatus
from keyfob.server.views import api_key_view, token_view, tokens_view, user_view, users_view

app = typer.Typer(
    cls=AdminGroup,
    help="Administer users, API keys, tokens and keys, directly on the server's database "
    "(found by --db, KEYFOB_DB or the config file; --db, --key-file and --config may also come "
    "after the subcommand). Admin commands never create a database: see `admin init`.",
    no_args_is_help=True,
)
user_app = typer.Typer(help="Users.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys.", no_args_is_help=True)
tokens_app = typer.Typer(help="The token inventory.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(apikey_app, name="apikey")
app.add_typer(tokens_app, name="tokens")
app.add_typer(radius_client_app, name="radius-client")
app.add_typer(directory_app, name="directory")
app.add_typer(tap_cli.app, name="tap")  # cli/tap.py: temporary access passcodes
helpdesk_cli.register(tokens_app)  # cli/helpdesk.py: lost, found, retire, show, drift-reset
app.command("backup")(backup_cli.backup)  # cli/backup.py: encrypted SQLite backups
app.command("restore")(backup_cli.restore)


@app.callback()
def _options(
    ctx: typer.Context,
    db: AdminDbOpt = None,
    key_file: KeyFileOpt = None,
    config: ConfigOpt = None,
) -> None:
    # read back by admin_common.admin_settings
    ctx.obj = {"db": db, "key_file": key_file, "config": config}


@app.command("init")
def init(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Create a new database and master key file where --db (or the config file) points, as
    `keyfob serve` does at its first start; an existing one is only brought up to date."""
    settings = admin_settings(ctx)
    server = open_context(settings)
    data = {
        "db": settings.db,
        "key_file": None if settings.master_key else str(settings.resolved_key_file()),
        "key_created": server.key_created,
    }
    if as_json:
        print_json(data)
        return
    typer.echo(f"database {settings.db} is ready")
    if server.key_created:
        typer.echo(f"created master key file {data['key_file']} (mode 0600): back it up")


# --- users -------------------------------------------------------------------------------


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="User principal name, e.g. alice@example.com.")],
    password: Annotated[
        str | None,
        typer.Option(
            "--user-password",
            help="The user's one-time password (they set their own at first sign-in); "
            "default: generate one.",
        ),
    ] = None,
    old_password: Annotated[str | None, typer.Option("--password", hidden=True)] = None,
    role: Annotated[
        str, typer.Option(help="user, helpdesk (tickets: passcodes, lost tokens, drift) or admin.")
    ] = "user",
    display_name: Annotated[str, typer.Option(help="Full name.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Add a user with a one-time password."""
    password = password or old_password
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


USERS_PAGE = 100


@user_app.command("list")
def user_list(
    ctx: typer.Context,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_LIMIT, help=f"Users in one page (1 to {MAX_LIMIT}).")
    ] = USERS_PAGE,
    offset: Annotated[
        int, typer.Option(min=0, max=MAX_OFFSET, help="Users to skip: where the page starts.")
    ] = 0,
    prefix: Annotated[
        str | None,
        typer.Option(
            help="Only usernames that start with this, in any case (% and _ match themselves)."
        ),
    ] = None,
    role: Annotated[
        str | None, typer.Option(help="Only this role: user, helpdesk or admin.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List users by username, a page at a time (--limit, --offset); stderr says which part of
    how many was shown and how to see the next page. --json prints
    {"items", "total", "limit", "offset"}, as GET /api/v1/users answers."""
    where = UserFilter(prefix, filter_word(Role, role, "role", hint="use user, helpdesk or admin"))
    page = accounts.list_users(admin_context(ctx), where, limit=limit, offset=offset)
    if as_json:
        print_json(users_view(page, limit=limit, offset=offset))
        return
    for u in page.items:
        flags = " disabled" if u.disabled else ""
        typer.echo(f"{u.username:<40} {u.role:<8}{flags}".rstrip())
    shown = _shown(page.total, len(page.items), limit, offset, prefix, role, _typed_options(ctx))
    typer.echo(shown, err=True)


def _typed_options(ctx: typer.Context) -> list[str]:
    """``keyfob admin``'s own options as typed on this command line (not from the environment
    or a config file), for the next page's command; a database password comes back as ***."""
    group = ctx.parent
    while group is not None and "db" not in group.params:  # up through `user` to `admin`
        group = group.parent
    if group is None:
        return []
    argv: list[str] = []
    for name, flag in (("db", "--db"), ("key_file", "--key-file"), ("config", "--config")):
        value = group.params.get(name)
        source = group.get_parameter_source(name)  # typer's own click: compared by name
        if value is None or source is None or source.name != "COMMANDLINE":
            continue
        if name == "db":
            value = make_url(str(value)).render_as_string(hide_password=True)
        argv += [flag, str(value)]
    return argv


def _shown(
    total: int,
    count: int,
    limit: int,
    offset: int,
    prefix: str | None,
    role: str | None,
    group: list[str],
) -> str:
    """Which users of how many a page showed, and the command that shows the next page."""
    if total == 0:
        return "no users match" if prefix or role else "no users"
    if count == 0:
        return (
            f"showing none of {total}: --offset {offset} is past the last user; "
            f"the last page starts at --offset {(total - 1) // limit * limit}"
        )
    line = f"showing {offset + 1}\N{EN DASH}{offset + count} of {total} user(s)"
    if offset + count >= total:
        return line
    argv = ["keyfob", "admin", *group, "user", "list"]
    argv += ["--prefix", prefix] if prefix else []
    argv += ["--role", role] if role else []
    argv += ["--limit", str(limit)] if limit != USERS_PAGE else []
    argv += ["--offset", str(offset + count)]
    return f"{line}; next page: {shlex.join(argv)}"


UserArg = Annotated[str, typer.Argument(metavar="USER", help="The user's name (UPN).")]
SerialArg = Annotated[
    str, typer.Argument(metavar="SERIAL", help="The token's serial (or its id, for an app).")
]


@user_app.command("disable")
def user_disable(ctx: typer.Context, username: UserArg, as_json: JsonOpt = False) -> None:
    """Disable a user (validation then rejects every code)."""
    user = accounts.set_disabled(admin_context(ctx), username, True, actor=ACTOR)
    said(as_json, user_view(user), f"disabled {user.username}")


@user_app.command("enable")
def user_enable(ctx: typer.Context, username: UserArg, as_json: JsonOpt = False) -> None:
    """Enable a disabled user."""
    user = accounts.set_disabled(admin_context(ctx), username, False, actor=ACTOR)
    said(as_json, user_view(user), f"enabled {user.username}")


@user_app.command("delete")
def user_delete(
    ctx: typer.Context,
    username: UserArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete a user: their app and programmable methods go with them, classic tokens go back
    to the inventory, their sessions end. The audit log keeps their name."""
    server = admin_context(ctx)
    if not yes:
        typer.confirm(f"Delete {username} and their methods?", abort=True, err=True)
    report = accounts.delete_user(server, username, actor=ACTOR)
    said(
        as_json,
        report,
        f"deleted {report['username']}: {report['deleted_methods']} method(s) deleted, "
        f"{len(report['returned_to_inventory'])} token(s) back in the inventory",
    )


@user_app.command("reset-password")
def user_reset_password(
    ctx: typer.Context,
    username: UserArg,
    password_file: Annotated[
        Path | None,
        typer.Option(
            "--password-file",
            exists=True,
            dir_okay=False,
            help="Read the new one-time password from this file (first line); default: "
            "generate one.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Give a user a new one-time password (they choose their own at the next sign-in)."""
    from keyfob.cli.common import first_line

    generated = password_file is None
    password = first_line(password_file, "password") if password_file else None
    password = password or accounts.generate_password()
    accounts.set_password(admin_context(ctx), username, password, one_time=True, actor=ACTOR)
    data = {"username": username, "must_change_password": True}
    if generated:
        data["one_time_password"] = password
    said(
        as_json,
        data,
        f"new one-time password for {username}" + (f": {password}" if generated else " set"),
    )


@user_app.command("methods")
def user_methods(ctx: typer.Context, username: UserArg, as_json: JsonOpt = False) -> None:
    """List a user's methods (apps, programmable and classic tokens) with their ids, for
    `user remove-method USER ID` and `tokens disable SERIAL_OR_ID`."""
    server = admin_context(ctx)
    items = [token_view(t, server.now()) for t in list_methods(server, username)]
    if as_json:
        print_json(items)
        return
    if not items:
        typer.echo(f"{username} has no methods", err=True)
        return
    typer.echo(f"{'ID':<32}  {'KIND':<12}  {'SERIAL':<16}  {'STATE':<8}  {'LAST USED':<16}  LABEL")
    for t in items:
        used = _minute(t["last_used_at"]) or "never"
        state = "locked" if t["locked"] else t["state"]
        typer.echo(
            f"{t['id']:<32}  {t['kind']:<12}  {t['serial'] or '-':<16}  {state:<8}  "
            f"{used:<16}  {t['label'] or ''}"
        )


@user_app.command("remove-method")
def user_remove_method(
    ctx: typer.Context,
    username: UserArg,
    token_id: Annotated[
        str, typer.Argument(metavar="ID", help="The method's id (keyfob admin user methods).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Remove one of a user's methods (the lost phone): an app or programmable method is
    deleted, a classic token goes back to the inventory."""
    from keyfob.server.enrolment import remove

    remove(admin_context(ctx), username, token_id, actor=ACTOR)
    said(
        as_json,
        {"username": username, "id": token_id, "removed": True},
        f"removed method {token_id} of {username}",
    )


# --- API keys ----------------------------------------------------------------------------


@apikey_app.command("create")
def apikey_create(
    ctx: typer.Context,
    role: Annotated[
        str, typer.Option(help="validate (for apps and VPNs), metrics, helpdesk or admin.")
    ],
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
    password: Annotated[
        str | None,
        typer.Option("--pskc-password", help="The PSKC file's password (PBKDF2)."),
    ] = None,
    old_password: Annotated[str | None, typer.Option("--password", hidden=True)] = None,
    key: Annotated[str | None, typer.Option(help="PSKC pre-shared key, hex.")] = None,
    mac_check: Annotated[str, typer.Option(help="strict, soft or none.")] = "strict",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row, import nothing.")
    ] = False,
    allow_retired: Annotated[
        bool,
        typer.Option("--allow-retired", help="Import a retired serial again (a new seed for it)."),
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
            password=password or old_password,
            key=key,
            mac_check=mac_check,
            dry_run=dry_run,
            allow_retired=allow_retired,
            actor=ACTOR,
        )
    data = report.summary()
    if as_json:  # the rows as they are encoded: 100 000 of them are 24 MB of JSON
        print_json_rows(data, "rows", (row.as_dict() for row in report.rows))
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
            made = "would be created" if dry_run else "created"
            typer.echo(f"users {made} for assignment: {', '.join(report.created_users)}")
    if not report.ok:
        raise typer.Exit(1)


@tokens_app.command("export")
def tokens_export(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="azure-csv or pskc.")] = "azure-csv",
    password: Annotated[
        str | None,
        typer.Option("--pskc-password", help="Password to encrypt the PSKC file with."),
    ] = None,
    old_password: Annotated[str | None, typer.Option("--password", hidden=True)] = None,
    assigned_only: Annotated[bool, typer.Option(help="Only assigned tokens.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Export classic tokens: Entra CSV (upload to Azure) or encrypted PSKC."""
    data = inventory.export(
        admin_context(ctx),
        fmt,
        password=password or old_password,
        assigned_only=assigned_only,
        actor=ACTOR,
    )
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    report = {"file": str(output), "format": fmt, "bytes": len(data), "mode": "0600"}
    said(as_json, report, f"wrote {output} (mode 0600: it holds token secrets)")


@tokens_app.command("list")
def tokens_list(
    ctx: typer.Context,
    state: Annotated[
        str | None, typer.Option(help="pending, active, disabled, lost or retired.")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="app, programmable or classic.")] = None,
    owner: Annotated[str | None, typer.Option(help="Username.")] = None,
    unassigned: Annotated[bool, typer.Option("--unassigned", help="Only the inventory.")] = False,
    drift_over: Annotated[
        int | None,
        typer.Option(
            "--drift-over", metavar="SECONDS", help="Only tokens whose learned drift is beyond."
        ),
    ] = None,
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
        drift_over=drift_over,
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
def tokens_assign(
    ctx: typer.Context, serial: SerialArg, username: UserArg, as_json: JsonOpt = False
) -> None:
    """Assign an inventory token to a user."""
    token_action(
        ctx, as_json, f"assigned {serial} to {username}", inventory.assign, serial, username
    )


@tokens_app.command("unassign")
def tokens_unassign(ctx: typer.Context, serial: SerialArg, as_json: JsonOpt = False) -> None:
    """Return a token to the inventory (for re-use when its owner leaves)."""
    token_action(ctx, as_json, f"unassigned {serial}", inventory.unassign, serial)


@tokens_app.command("unlock")
def tokens_unlock(ctx: typer.Context, serial: SerialArg, as_json: JsonOpt = False) -> None:
    """Clear a token's lockout."""
    token_action(ctx, as_json, f"unlocked {serial}", inventory.unlock_token, serial)


@tokens_app.command("disable")
def tokens_disable(ctx: typer.Context, serial: SerialArg, as_json: JsonOpt = False) -> None:
    """Disable a token (or a user's method, by its id): every code is refused until it is
    enabled again; its owner and state are kept."""
    token_action(ctx, as_json, f"disabled {serial}", inventory.set_token_disabled, serial, True)


@tokens_app.command("enable")
def tokens_enable(ctx: typer.Context, serial: SerialArg, as_json: JsonOpt = False) -> None:
    """Enable a disabled token again."""
    token_action(ctx, as_json, f"enabled {serial}", inventory.set_token_disabled, serial, False)


@tokens_app.command("resync")
def tokens_resync(
    ctx: typer.Context,
    serial: SerialArg,
    code1: Annotated[str, typer.Argument(help="A code the token shows.")],
    code2: Annotated[str, typer.Argument(help="The next code it shows.")],
    as_json: JsonOpt = False,
) -> None:
    """Resynchronise a token with two consecutive codes."""
    server = admin_context(ctx)
    token = inventory.resync_token(server, serial, code1, code2, actor=ACTOR)
    view = token_view(token, server.now())
    said(as_json, view, f"resynchronised {serial}: drift {view['drift_seconds']:+d}s")


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
    as_json: JsonOpt = False,
) -> None:
    """Re-encrypt every stored secret under a new master key; safe while servers run.

    The new key is added to the key file (old keys stay until no row needs them), every live
    server must hold it, then one transaction switches and re-encrypts. Killed at any point,
    run it again. With KEYFOB_MASTER_KEY, give the new key in KEYFOB_NEW_MASTER_KEY and start
    the servers with KEYFOB_MASTER_KEY=<new>,<old> first."""
    report = rotate_key(
        admin_context(ctx), new_env_key=os.environ.get("KEYFOB_NEW_MASTER_KEY"), wait=wait
    )
    data = report.as_dict()
    if as_json:
        print_json(data)
        return
    typer.echo(
        f"new master key {report.new_kid}: {report.reencrypted} secret(s) re-encrypted; "
        f"keys dropped: {', '.join(report.dropped) or 'none'}"
    )
    if report.still_in_env:
        typer.echo(f"unused keys in KEYFOB_MASTER_KEY: {', '.join(report.still_in_env)}")
