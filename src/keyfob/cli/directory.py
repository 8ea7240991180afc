"""``keyfob admin directory add|list|set|test|remove``: LDAP / Active Directory user sources.

Like the rest of ``keyfob admin`` these work on the database directly; running servers see a
change within 10 s. The bind password is read from a file (never a command-line argument,
which ``ps`` shows) and stored sealed; nothing prints it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keyfob.cli.admin_common import ACTOR, JsonOpt, admin_context
from keyfob.cli.common import first_line, print_json
from keyfob.server.directory import admin
from keyfob.server.directory.admin import directory_view
from keyfob.server.directory.config import check_kind, spec_from_options

directory_app = typer.Typer(
    help="Directories (LDAP, Active Directory) as a user source.", no_args_is_help=True
)


@directory_app.command("add")
def directory_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the directory, e.g. corp.")],
    url: Annotated[str, typer.Option(help="Servers in failover order, comma-separated.")],
    base_dn: Annotated[str, typer.Option(help="Where users are searched.")],
    bind_dn: Annotated[str, typer.Option(help="The service account keyfob searches as.")],
    bind_password_file: Annotated[Path, typer.Option(help="File with its password.")],
    kind: Annotated[str, typer.Option(help="ad or openldap.")] = "ad",
    login_attribute: Annotated[
        str, typer.Option(help="userPrincipalName|sAMAccountName|uid|mail (default by kind).")
    ] = "",
    filter: Annotated[str, typer.Option("--filter", help="Extra user filter.")] = "",
    group: Annotated[str, typer.Option(help="Only members of this group DN (nested).")] = "",
    disabled_filter: Annotated[
        str, typer.Option(help="Users matching it are disabled (AD: userAccountControl too).")
    ] = "",
    ca_file: Annotated[str, typer.Option(help="CA certificates to trust (PEM).")] = "",
    starttls: Annotated[bool, typer.Option(help="ldap:// upgraded with StartTLS.")] = False,
    cache_ttl: Annotated[int, typer.Option(help="Seconds a lookup is cached.")] = 300,
    as_json: JsonOpt = False,
) -> None:
    """Add a directory; its users can sign in from then on (found on demand)."""
    spec = spec_from_options(ctx.params)
    password = first_line(bind_password_file, "bind password")
    record = admin.add_directory(admin_context(ctx), spec, password, actor=ACTOR)
    if as_json:
        print_json(directory_view(record))
        return
    typer.echo(f"added directory {record.name!r} ({record.kind}, {', '.join(record.urls)})")
    typer.echo(f"check it with: keyfob admin directory test {record.name} SOME_USER")


@directory_app.command("list")
def directory_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List directories (never their bind passwords)."""
    listed = admin.list_directories(admin_context(ctx))
    if as_json:
        print_json([directory_view(r, n) for r, n in listed])
        return
    typer.echo(f"{'NAME':<16}  {'KIND':<8}  {'USERS':>5}  SERVERS")
    for r, n in listed:
        typer.echo(f"{r.name:<16}  {r.kind.value:<8}  {n:>5}  {', '.join(r.urls)}")


@directory_app.command("set")
def directory_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The directory to change.")],
    url: Annotated[str | None, typer.Option(help="Servers in failover order.")] = None,
    base_dn: Annotated[str | None, typer.Option(help="Where users are searched.")] = None,
    bind_dn: Annotated[str | None, typer.Option(help="The service account.")] = None,
    bind_password_file: Annotated[
        Path | None, typer.Option(help="File with the service account's new password.")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="ad or openldap (no users yet).")] = None,
    login_attribute: Annotated[
        str | None, typer.Option(help="userPrincipalName|sAMAccountName|uid|mail.")
    ] = None,
    filter: Annotated[str | None, typer.Option("--filter", help="'' for none.")] = None,
    group: Annotated[str | None, typer.Option(help="Group DN; '' for none.")] = None,
    disabled_filter: Annotated[str | None, typer.Option(help="'' for none.")] = None,
    ca_file: Annotated[str | None, typer.Option(help="CA certificates (PEM); '' for none.")] = None,
    starttls: Annotated[
        bool | None, typer.Option("--starttls/--no-starttls", help="Upgrade ldap://.")
    ] = None,
    cache_ttl: Annotated[int | None, typer.Option(help="Seconds a lookup is cached.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change settings of a directory; the options not given stay as they are."""
    given = {
        "urls": tuple(url.split(",")) if url is not None else None,
        "base_dn": base_dn,
        "bind_dn": bind_dn,
        "kind": check_kind(kind) if kind is not None else None,
        "login_attribute": login_attribute,
        "user_filter": filter,
        "group_dn": group,
        "disabled_filter": disabled_filter,
        "ca_file": ca_file,
        "starttls": starttls,
        "cache_ttl": cache_ttl,
    }
    changes = {k: v for k, v in given.items() if v is not None}
    password = None
    if bind_password_file is not None:
        password = first_line(bind_password_file, "bind password")
    if not changes and password is None:
        raise typer.BadParameter("give at least one setting to change (see --help)")
    record = admin.set_directory(admin_context(ctx), name, changes, password, actor=ACTOR)
    if as_json:
        print_json(directory_view(record))
        return
    typer.echo(f"changed directory {record.name!r}")


@directory_app.command("test")
def directory_test(
    ctx: typer.Context,
    name: str,
    user: Annotated[str | None, typer.Argument(help="A login name to look up.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Connect and bind to each server, find USER, print what keyfob would store and how long
    each step took. Exit code 1 when a step failed."""
    report = admin.test_directory(admin_context(ctx), name, user)
    if as_json:
        print_json({"ok": report.ok, "steps": report.steps, "user": report.user})
    else:
        for step in report.steps:
            typer.echo(f"{step['step']:<48} {step['ms']:>8.1f} ms  {step['result']}")
        for key, value in (report.user or {}).items():
            typer.echo(f"  {key}: {value}")
    if not report.ok:
        raise typer.Exit(1)


@directory_app.command("remove")
def directory_remove(ctx: typer.Context, name: str) -> None:
    """Remove a directory; its users' rows stay, disabled, with their tokens."""
    count = admin.remove_directory(admin_context(ctx), name, actor=ACTOR)
    typer.echo(f"removed directory {name!r}; {count} of its users disabled")
