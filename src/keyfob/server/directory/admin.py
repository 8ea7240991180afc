"""``directory add / list / set / test / remove``: the operations behind the CLI and the admin page.

The bind password is sealed with the key ring (the row id as associated data, re-encrypted by
``rotate-key``); it is never returned, printed, logged or audited.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields, replace
from typing import Any

from keyfob.server import auditlog
from keyfob.server.context import ServerContext
from keyfob.server.directory import store
from keyfob.server.directory.config import DirectoryRecord, DirectorySpec, check_spec
from keyfob.server.directory.errors import DirectoryRefused, DirectoryUnavailable
from keyfob.server.directory.hub import hub_of
from keyfob.server.directory.ldap import LdapClient
from keyfob.server.directory.lookup import find_user
from keyfob.server.errors import Conflict, NotFound, ServiceError
from keyfob.server.store import repo


def add_directory(
    ctx: ServerContext,
    spec: DirectorySpec,
    bind_password: str,
    *,
    actor: str,
    client: str | None = None,
) -> DirectoryRecord:
    spec = check_spec(spec)
    _check_password(bind_password)
    row_id = repo.new_id()
    with ctx.begin() as conn:
        if store.get_directory(conn, spec.name) is not None:
            raise Conflict(
                f"directory {spec.name!r} exists", hint="remove it first, or pick another name"
            )
        store.insert_directory(
            conn,
            id=row_id,
            secret_enc=ctx.seal(conn, bind_password.encode(), row_id),
            created_at=ctx.now_dt(),
            **spec.columns(),
        )
        record = store.get_directory(conn, spec.name)
        auditlog.record(
            conn,
            ctx,
            actor=actor,
            action="directory.add",
            outcome="success",
            client=client,
            details={"name": spec.name, "kind": spec.kind.value, "urls": ",".join(spec.urls)},
        )
    assert record is not None
    hub_of(ctx).reload()
    return record


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


def list_directories(ctx: ServerContext) -> list[tuple[DirectoryRecord, int]]:
    """Every directory with how many users it has given keyfob so far."""
    with ctx.engine.connect() as conn:
        counts = store.count_links(conn)
        return [(r, counts.get(r.id, 0)) for r in store.all_directories(conn)]


def get_directory(ctx: ServerContext, name: str) -> DirectoryRecord:
    with ctx.engine.connect() as conn:
        record = store.get_directory(conn, name)
    if record is None:
        raise NotFound(f"no directory {name!r}", hint="keyfob admin directory list shows them")
    return record


SETTINGS = tuple(f.name for f in fields(DirectorySpec) if f.name != "name")


def _check_password(bind_password: str) -> None:
    if not bind_password or len(bind_password) > 1024:
        raise ServiceError(
            "the bind password is empty or longer than 1024 characters",
            hint="put the service account's password in --bind-password-file",
        )


def set_directory(
    ctx: ServerContext,
    name: str,
    changes: dict[str, Any],
    bind_password: str | None = None,
    *,
    actor: str,
    client: str | None = None,
) -> DirectoryRecord:
    """Change some settings of a directory (``changes``: :data:`SETTINGS` names to new values;
    the rest stay) and, given, its bind password. Checked like ``add``; the kind cannot change
    while users are linked (their stable ids are of the old kind's attribute)."""
    unknown = sorted(set(changes) - set(SETTINGS))
    if unknown:
        raise ServiceError(f"no directory setting {unknown[0]!r}", hint=", ".join(SETTINGS))
    if bind_password is not None:
        _check_password(bind_password)
    with ctx.begin() as conn:
        record = store.get_directory(conn, name)
        if record is None:
            raise NotFound(f"no directory {name!r}", hint="keyfob admin directory list shows them")
        old = DirectorySpec(**{f: getattr(record, f) for f in ("name", *SETTINGS)})
        if "kind" in changes and "login_attribute" not in changes:
            changes = {**changes, "login_attribute": old.login_attribute}
        new = check_spec(replace(old, **changes))
        changed = [f for f in SETTINGS if getattr(new, f) != getattr(old, f)]
        if "kind" in changed and store.count_links(conn).get(record.id, 0):
            raise Conflict(
                f"directory {name!r} has users: its kind cannot change",
                hint="their stable ids are of the old kind; remove the directory and add it again",
            )
        values = {k: v for k, v in new.columns().items() if k in changed}
        if bind_password is not None:
            values["secret_enc"] = ctx.seal(conn, bind_password.encode(), record.id)
            changed.append("bind_password")
        if values:
            store.update_directory(conn, record.id, **values)
        auditlog.record(
            conn,
            ctx,
            actor=actor,
            action="directory.set",
            outcome="success",
            client=client,
            details={"name": name, "changed": ",".join(changed) or "nothing"},
        )
        updated = store.get_directory(conn, name)
    assert updated is not None
    hub_of(ctx).reload()
    return updated


def remove_directory(
    ctx: ServerContext, name: str, *, actor: str, client: str | None = None
) -> int:
    """Remove a directory. Its users' rows stay, disabled, with their tokens (an admin may
    reassign or remove them); returns how many."""
    with ctx.begin() as conn:
        record = store.get_directory(conn, name)
        if record is None:
            raise NotFound(f"no directory {name!r}", hint="keyfob admin directory list shows them")
        linked = store.delete_directory(conn, record.id)
        store.set_disabled(conn, linked, True)
        auditlog.record(
            conn,
            ctx,
            actor=actor,
            action="directory.remove",
            outcome="success",
            client=client,
            details={"name": name, "users_disabled": len(linked)},
        )
    hub_of(ctx).reload()
    return len(linked)


@dataclass
class TestReport:
    """What ``directory test`` saw: each step with its time, and the user as keyfob would
    store them."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    user: dict[str, Any] | None = None
    ok: bool = True

    def step(self, name: str, started: float, result: str) -> None:
        self.steps.append(
            {"step": name, "ms": round((time.perf_counter() - started) * 1000, 1), "result": result}
        )


def test_directory(ctx: ServerContext, name: str, login: str | None = None) -> TestReport:
    """Connect and bind (each server), then find ``login``; never changes the database."""
    record = get_directory(ctx, name)
    password = ctx.ring.open(record.secret_enc, record.id).decode()
    report = TestReport()
    for url in record.urls:
        single = DirectoryRecord(**{**record.__dict__, "urls": (url,)})
        started = time.perf_counter()
        try:
            conn = LdapClient(single, password).connect(record.bind_dn, password)
        except (DirectoryUnavailable, DirectoryRefused) as exc:
            report.step(f"connect + bind {url}", started, f"failed: {exc.message}")
            report.ok = False
            continue
        report.step(f"connect + bind {url}", started, "ok" if conn else "bind refused")
        report.ok = report.ok and conn is not None
        if conn is not None:
            conn.unbind()
    if login:
        _test_lookup(report, record, password, login)
    return report


def _test_lookup(report: TestReport, record: DirectoryRecord, password: str, login: str) -> None:
    client = LdapClient(record, password)
    started = time.perf_counter()
    try:
        found = find_user(client, record, login)
    except (DirectoryUnavailable, DirectoryRefused) as exc:
        report.step(f"find {login}", started, f"failed: {exc.message}")
        report.ok = False
        return
    finally:
        client.close()
    report.step(f"find {login}", started, "found" if found else "not found")
    if found is None:
        report.ok = False
        return
    report.user = {
        "username": found.login,
        "display_name": found.display_name,
        "dn": found.dn,
        record.stable_id_attribute: found.external_id,
        "admitted": found.refusal is None,
        "refusal": found.refusal,
    }
