"""Directory users against a real OpenLDAP (docs/design.md §7): lookup by stable id, renames,
reused names, disabled users, groups (nested), RFC 4515 escaping, directory passwords."""

from __future__ import annotations

import pyotp
import sqlalchemy as sa
from slapdkit import Slapd, Tree

from conftest import AddDirectory
from keyfob.server import accounts
from keyfob.server.context import ServerContext
from keyfob.server.directory import admit
from keyfob.server.directory.store import local_row
from keyfob.server.store.schema import audit, directory_users
from keyfob.server.validation import validate
from testkit import Clock, activate_app

PW = "alice-directory-pw"


def cached_user(
    ctx: ServerContext, clock: Clock, tree: Tree, add_directory: AddDirectory, name: str
) -> pyotp.TOTP:
    """``name`` in ``tree``, a directory of it cached for 10 s, and their activated TOTP app."""
    tree.add_user(name, PW)
    add_directory(tree, cache_ttl=10)
    return activate_app(ctx, clock, name)


def reasons(ctx: ServerContext) -> list[str]:
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit.c.reason).where(audit.c.action == "validate").order_by(audit.c.id)
        )
        return [r.reason for r in rows]


def test_user_found_keyed_by_entry_uuid(
    ctx: ServerContext, clock: Clock, tree: Tree, add_directory: AddDirectory
) -> None:
    tree.add_user("alice", PW)
    add_directory(tree)
    secret = activate_app(ctx, clock, "alice")
    assert validate(ctx, "alice", secret.at(clock.now)).accepted
    with ctx.engine.connect() as conn:
        link = conn.execute(sa.select(directory_users)).one()
        row = local_row(conn, "ALICE")
    assert row is not None and row.username == "alice" and row.user_id == link.user_id
    assert len(link.external_id) == 36 and link.dn == tree.user_dn("alice")
    assert accounts.get_user(ctx, "alice").display_name == "Alice Example"


def test_renamed_user_keeps_tokens(
    ctx: ServerContext, clock: Clock, tree: Tree, add_directory: AddDirectory
) -> None:
    secret = cached_user(ctx, clock, tree, add_directory, "bob")
    tree.rename_user("bob", "robert")
    clock.advance(30)  # past the cache's 10 s
    assert validate(ctx, "robert", secret.at(clock.now)).accepted
    clock.advance(30)
    assert not validate(ctx, "bob", secret.at(clock.now)).accepted
    assert reasons(ctx)[-1] == "unknown_user"


def test_reused_name_does_not_get_the_tokens(
    ctx: ServerContext, clock: Clock, tree: Tree, add_directory: AddDirectory
) -> None:
    secret = cached_user(ctx, clock, tree, add_directory, "carol")
    tree.delete_user("carol")
    tree.add_user("carol", "another-carol-pw")  # a new person, a new entryUUID
    clock.advance(30)
    assert not validate(ctx, "carol", secret.at(clock.now)).accepted
    assert reasons(ctx)[-1] == "no_tokens"  # the new carol has a row of her own, and no tokens
    with ctx.engine.connect() as conn:
        links = conn.execute(sa.select(directory_users)).all()
    assert len(links) == 2


def test_disabled_user_refused_like_unknown(
    ctx: ServerContext, clock: Clock, tree: Tree, add_directory: AddDirectory
) -> None:
    tree.add_user("dave", PW)
    tree.add_user("erin", PW, disabled=True)
    add_directory(tree, disabled_filter="(employeeType=disabled)")
    assert admit(ctx, "dave").refusal is None
    assert admit(ctx, "erin").refusal == "unknown_user:disabled"
    unknown = validate(ctx, "nobody-here", "123456")
    disabled = validate(ctx, "erin", "123456")
    assert (unknown.accepted, disabled.accepted) == (False, False)
    assert reasons(ctx)[-2:] == ["unknown_user", "unknown_user:disabled"]
    assert accounts.authenticate(ctx, "erin", PW) is None


def test_group_direct_and_nested(
    ctx: ServerContext, clock: Clock, tree: Tree, add_directory: AddDirectory
) -> None:
    """OpenLDAP has no LDAP_MATCHING_RULE_IN_CHAIN: keyfob walks groupOfNames upwards."""
    for uid in ("in1", "in2", "out"):
        tree.add_user(uid, PW)
    tree.add_group("inner", [tree.user_dn("in2")])
    tree.add_group("vpn", [tree.user_dn("in1"), tree.group_dn("inner")])
    add_directory(tree, group_dn=tree.group_dn("vpn"))
    assert admit(ctx, "in1").refusal is None  # direct member
    assert admit(ctx, "in2").refusal is None  # member through a nested group
    assert admit(ctx, "out").refusal == "unknown_user:outside_group"
    assert not validate(ctx, "out", "123456").accepted
    assert reasons(ctx)[-1] == "unknown_user:outside_group"


def test_filter_characters_find_nothing(
    ctx: ServerContext, slapd: Slapd, tree: Tree, add_directory: AddDirectory
) -> None:
    tree.add_user("frank", PW)
    add_directory(tree)
    mark = slapd.log_mark()
    for name in ("*", "fr*", "(uid=*)", "frank)(uid=*", "*)(|(uid=*"):
        assert not admit(ctx, name).directory_user, name
        assert not validate(ctx, name, "123456").accepted
    log = slapd.log_path.read_text(errors="replace")
    # every name went as one escaped value: no wildcard, no injected filter
    assert 'filter="(&(uid=\\2A)(objectClass=person))"' in log
    assert 'filter="(&(uid=frank\\29\\28uid=\\2A)(objectClass=person))"' in log
    assert len(slapd.ops_since(mark, "SRCH")) == 5
    with ctx.engine.connect() as conn:
        assert conn.execute(sa.select(directory_users)).all() == []


def test_directory_password_signs_in(
    ctx: ServerContext, slapd: Slapd, tree: Tree, add_directory: AddDirectory
) -> None:
    tree.add_user("gina", PW)
    add_directory(tree)
    user = accounts.authenticate(ctx, "gina", PW)
    assert user is not None and user.username == "gina"
    mark = slapd.log_mark()
    assert accounts.authenticate(ctx, "gina", "wrong-password") is None
    assert accounts.authenticate(ctx, "gina", "") is None  # never an unauthenticated bind
    binds = slapd.ops_since(mark, "BIND")
    assert len(binds) == 1  # the wrong password; the empty one never left keyfob
