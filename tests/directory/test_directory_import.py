"""A seed-file import that names directory users (docs/design.md §7), against the real slapd on
both backends: their tokens go to their directory-linked rows (no local user is created to
shadow them), a user the directory refuses is a row error, and an unreachable directory fails
the import with nothing written."""

from __future__ import annotations

import time

import pyotp
import pytest
import sqlalchemy as sa
from slapdkit import Tree, free_tcp_port

from conftest import AddDirectory
from keyfob.server import accounts, inventory
from keyfob.server.context import ServerContext
from keyfob.server.directory import DirectoryUnavailable
from keyfob.server.errors import NotFound
from keyfob.server.store.schema import directory_users, tokens, users
from keyfob.server.validation import validate
from testkit import Clock

PW = "import-directory-pw"
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
HEADER = "upn,serial number,secret key,time interval,manufacturer,model\n"


def entra(*rows: tuple[str, str]) -> bytes:
    """An Entra CSV: (upn, serial) rows, every token on the same seed."""
    lines = [f"{upn},{serial},{SEED},30,Token2,C202\n" for upn, serial in rows]
    return (HEADER + "".join(lines)).encode()


def owners(ctx: ServerContext) -> dict[str, str | None]:
    stmt = sa.select(tokens.c.serial, users.c.username).select_from(
        tokens.outerjoin(users, users.c.id == tokens.c.owner_id)
    )
    with ctx.engine.connect() as conn:
        return {r.serial: r.username for r in conn.execute(stmt)}


def test_import_assigns_tokens_to_directory_users(
    ctx: ServerContext, clock: Clock, tree: Tree, add_directory: AddDirectory
) -> None:
    tree.add_user("uma", PW)
    tree.add_user("walt", PW)
    add_directory(tree, login_attribute="mail")
    accounts.create_user(ctx, "walt@example.com")  # a local user of that name comes first
    data = entra(
        ("uma@example.com", "2300000000101"),
        ("local-only@example.com", "2300000000102"),
        ("walt@example.com", "2300000000103"),
        ("", "2300000000104"),
        ("UMA@example.com", "2300000000105"),  # the same directory user, another spelling
    )
    dry = inventory.import_seeds(ctx, data, dry_run=True, actor="test")
    assert dry.ok and dry.created_users == ["local-only@example.com"]
    started = time.monotonic()
    report = inventory.import_seeds(ctx, data, actor="test")
    assert time.monotonic() - started < 10  # no wait on a write lock the import holds
    assert report.ok and report.created_users == ["local-only@example.com"], report.as_dict()
    assert owners(ctx) == {
        "2300000000101": "uma@example.com",
        "2300000000102": "local-only@example.com",
        "2300000000103": "walt@example.com",
        "2300000000104": None,
        "2300000000105": "uma@example.com",
    }
    with ctx.engine.connect() as conn:
        linked = conn.execute(
            sa.select(users.c.username).join(
                directory_users, directory_users.c.user_id == users.c.id
            )
        ).all()
    assert [r.username for r in linked] == ["uma@example.com"]  # walt stays the local user
    code = pyotp.TOTP(SEED).at(clock.now)
    assert validate(ctx, "uma@example.com", code).accepted
    again = inventory.import_seeds(ctx, data, actor="test")  # idempotent
    assert again.ok and again.count(inventory.ImportAction.UNCHANGED) == 5


def test_a_user_the_directory_refuses_is_a_row_error(
    ctx: ServerContext, tree: Tree, add_directory: AddDirectory
) -> None:
    tree.add_user("vera", PW, disabled=True)
    tree.add_user("xena", PW)
    add_directory(tree, login_attribute="mail", disabled_filter="(employeeType=disabled)")
    data = entra(("xena@example.com", "2300000000201"), ("vera@example.com", "2300000000202"))
    report = inventory.import_seeds(ctx, data, actor="test")
    assert not report.ok
    (error,) = [r for r in report.rows if r.action is inventory.ImportAction.ERROR]
    assert error.serial == "2300000000202" and "disabled" in error.message and error.hint
    assert owners(ctx) == {}  # all or nothing
    assert report.created_users == []
    with pytest.raises(NotFound):
        inventory.assign(ctx, "2300000000202", "vera@example.com", actor="test")


def test_an_unreachable_directory_fails_the_import(
    ctx: ServerContext, tree: Tree, add_directory: AddDirectory
) -> None:
    add_directory(tree, urls=[f"ldaps://127.0.0.1:{free_tcp_port()}"], login_attribute="mail")
    accounts.create_user(ctx, "known@example.com")
    local_only = entra(("known@example.com", "2300000000301"), ("", "2300000000302"))
    assert inventory.import_seeds(ctx, local_only, actor="test").ok  # local users: no LDAP
    with pytest.raises(DirectoryUnavailable):
        inventory.import_seeds(ctx, entra(("new@example.com", "2300000000303")), actor="test")
    assert set(owners(ctx)) == {"2300000000301", "2300000000302"}
