"""``keyfob admin directory add|list|test|remove``: LDAP / Active Directory user sources.

Like the rest of ``keyfob admin`` these work on the database directly; running servers see a
change within 10 s. The bind password is read from a file (never a command-line argument,
which ``ps`` shows) and stored sealed; nothing prints it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from keyfob.cli.admin_common import ACTOR, JsonOpt, admin_context
from keyfob.cli.common import first_line, print_json
from keyfob.server.directory import admin
from keyfob.server.directory.config import DirectoryRecord, DirectorySpec, check_kind

directory_app = typer.Typer(
    help="Directories (LDAP, Active Directory) as a user source.", no_args_is_help=True
)


def directory_view(record: DirectoryRecord, users: int | None = None) -> dict[str, Any]:
    """A directory as the CLI and the admin page show it: never the bind password."""
    view = {
        "name": record.name,
        "kind": record.kind.value,
        "urls": list(record.urls),
        "base_dn": record.base_dn,
        "bind_dn": record.bind_dn,
        "login_attribute": record.login_attribute,
        "filter": record.user_filter,
        "group": record.group_dn,
        "disabled_filter": record.disabled_filter,
        "ca_file": record.ca_file,
        "starttls": record.starttls,
        "cache_ttl": record.cache_ttl,
    }
    return view if users is None else {**view, "users": users}


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
    spec = DirectorySpec(
        name=name,
        urls=tuple(url.split(",")),
        base_dn=base_dn,
        bind_dn=bind_dn,
        kind=check_kind(kind),
        login_attribute=login_attribute,
        user_filter=filter,
        group_dn=group,
        disabled_filter=disabled_filter,
        ca_file=ca_file,
        starttls=starttls,
        cache_ttl=cache_ttl,
    )
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
