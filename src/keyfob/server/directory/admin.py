"""``directory add / list / test / remove``: the operations behind the CLI and the admin page.

The bind password is sealed with the key ring (the row id as associated data, re-encrypted by
``rotate-key``); it is never returned, printed, logged or audited.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
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
    if not bind_password or len(bind_password) > 1024:
        raise ServiceError("the bind password is empty", hint="put it in --bind-password-file")
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
