"""The token inventory: import seed files, list, assign and re-assign, unlock, resync, export.

Imports are all-or-nothing: the whole file is read and checked first (every row's problem is
reported with its line), and only a clean file is written, in one short transaction (every row is
prepared before it, see :func:`import_seeds`). Re-importing is
idempotent by serial: the same serial with the same seed is "unchanged"; the same serial with a
*different* seed is an error, never a silent overwrite of a factory seed.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from keyfob.formats.csvseeds import write_entra_csv
from keyfob.formats.pskc import MacCheck, write_pskc
from keyfob.formats.seedfile import SeedFormat, stream_seed_file
from keyfob.formats.seeds import RowWarning, SeedItem, SeedRecord, SeedStream
from keyfob.otp import OtpType
from keyfob.otp.verify import TokenState, unlock
from keyfob.server import auditlog
from keyfob.server.accounts import NO_USER_HINT
from keyfob.server.context import ServerContext
from keyfob.server.decisions import resync_codes
from keyfob.server.enrolment import DEFAULT_LABELS, _released
from keyfob.server.errors import CodeRejected, Conflict, NotFound, ServiceError
from keyfob.server.inputs import check_serial
from keyfob.server.store import keystate, repo
from keyfob.server.store.records import TokenRecord, state_values
from keyfob.server.views import token_view

_CHUNK = 500  # rows compared with the inventory per round trip (and per IN list)
NO_TOKEN_HINT = "check the serial (an app method has none: use its id); the token list shows all"


@dataclass(slots=True)
class ImportRow:
    where: str
    serial: str | None
    action: str  # create | unchanged | error | warning
    message: str = ""
    user: str | None = None
    hint: str | None = None

    def as_dict(self) -> dict[str, Any]:
        row = {
            "where": self.where,
            "serial": self.serial,
            "action": self.action,
            "message": self.message,
            "user": self.user,
        }
        return row | {"hint": self.hint} if self.hint else row


@dataclass
class ImportReport:
    format: str
    dry_run: bool
    rows: list[ImportRow] = field(default_factory=list)
    created_users: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(r.action == "error" for r in self.rows)

    def count(self, action: str) -> int:
        return sum(1 for r in self.rows if r.action == action)

    def summary(self) -> dict[str, Any]:
        """Everything but the rows (a 300 000-row file's rows are 100 MB as dicts)."""
        return {
            "format": self.format,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "imported": 0 if (self.dry_run or not self.ok) else self.count("create"),
            "created": self.count("create"),
            "unchanged": self.count("unchanged"),
            "errors": self.count("error"),
            "created_users": self.created_users,
        }

    def as_dict(self) -> dict[str, Any]:
        return self.summary() | {"rows": [r.as_dict() for r in self.rows]}


@dataclass
class _Plan:
    """What an import will write, staged before its transaction (see :func:`import_seeds`)."""

    report: ImportReport
    kid: str  # the key every staged secret was sealed with
    staging: repo.Staging | None  # None for a dry run, and once a row failed: nothing to write
    user_ids: dict[str, str] = field(default_factory=dict)  # user_key -> id, existing or new
    failed: bool = False  # a row has an error (report.ok, without counting every row again)
    created: int = 0
    assigned: int = 0


def _same_seed(ctx: ServerContext, existing: TokenRecord, rec: SeedRecord) -> bool:
    return (
        ctx.ring.open(existing.secret_enc, existing.id) == rec.secret
        and existing.type is rec.type
        and existing.algorithm is rec.algorithm
        and existing.digits == rec.digits
        and existing.period == rec.period
    )


def import_seeds(
    ctx: ServerContext,
    data: bytes | IO[bytes],
    *,
    fmt: str | None = None,
    source: str = "upload",
    password: str | None = None,
    key: bytes | None = None,
    mac_check: str = MacCheck.STRICT,
    dry_run: bool = False,
    actor: str,
    client: str | None = None,
) -> ImportReport:
    """Import a seed file: bytes, or a seekable binary file, read as it goes.

    Every row is read, checked, compared with the inventory and its secret sealed *before* the
    write transaction, and waits in temporary tables (:class:`repo.Staging`); the transaction
    then only copies them over. On SQLite it holds the one write lock that every validation
    needs for its audit row, so it must not last as long as reading the file does (100 000
    rows: seconds to read and seal, a fraction of that to copy). All or nothing still holds: a
    bad row writes nothing, and so does a serial or user that another writer added meanwhile
    (the copy fails on the unique index and the transaction with it: :class:`Conflict`)."""
    stream = stream_seed_file(
        data, SeedFormat(fmt) if fmt else None, password=password, key=key, mac_check=mac_check
    )
    with ctx.engine.connect() as conn:
        plan = _plan(ctx, conn, stream, source, dry_run)
        try:
            with ctx.begin(conn):
                if plan.staging is not None:
                    _publish(ctx, conn, plan.staging, plan.kid)
                _audit_import(conn, ctx, plan, actor, client, source)
        except IntegrityError:
            raise Conflict(
                "another import or an enrolment added one of this file's serials or users "
                "while it was being imported; nothing was imported",
                hint="run the import again: it is idempotent, tokens already there stay unchanged",
            ) from None
        finally:
            _drop_staging(conn, plan)
    return plan.report


def _publish(ctx: ServerContext, conn: Connection, staging: repo.Staging, kid: str) -> None:
    """In the write transaction: copy the staged rows, if they were sealed with the key id the
    database still seals with (read under the lock a rotation waits for)."""
    if ctx.sealing_kid(conn) != kid:
        raise Conflict(
            "the master key was rotated while this file was being imported; nothing was imported",
            hint="run the import again (it is idempotent)",
        )
    staging.publish(conn)


def _plan(
    ctx: ServerContext, conn: Connection, stream: SeedStream, source: str, dry_run: bool
) -> _Plan:
    """Read the whole stream, a chunk of rows per round trip to the inventory."""
    plan = _Plan(
        report=ImportReport(stream.format, dry_run),
        kid=keystate.current_kid(conn) or ctx.ring.preferred,
        staging=None if dry_run else repo.Staging(conn),
    )
    conn.commit()  # so that every chunk, and the write transaction, starts afresh
    now_dt = ctx.now_dt()
    try:
        while chunk := list(itertools.islice(stream.items, _CHUNK)):
            _plan_chunk(ctx, conn, plan, chunk, source, now_dt)
            conn.commit()  # no read snapshot or staging transaction outlives a chunk
    except BaseException:
        _drop_staging(conn, plan)
        raise
    if plan.failed:
        _drop_staging(conn, plan)
    plan.report.created_users.sort()
    return plan


def _drop_staging(conn: Connection, plan: _Plan) -> None:
    """Free the staged rows (written, or never to be)."""
    if plan.staging is not None:
        conn.rollback()
        plan.staging.drop(conn)
        conn.commit()
        plan.staging = None


def _plan_chunk(
    ctx: ServerContext,
    conn: Connection,
    plan: _Plan,
    chunk: list[SeedItem],
    source: str,
    now_dt: datetime,
) -> None:
    records = [item for item in chunk if isinstance(item, SeedRecord)]
    existing = repo.serials_present(conn, [r.serial for r in records])
    new_upns = [r.upn for r in records if r.upn and repo.user_key(r.upn) not in plan.user_ids]
    plan.user_ids.update(repo.user_ids(conn, new_upns))
    new_users: list[dict[str, Any]] = []
    new_tokens: list[dict[str, Any]] = []
    for item in chunk:
        if not isinstance(item, SeedRecord):
            action = "warning" if isinstance(item, RowWarning) else "error"
            plan.report.rows.append(
                ImportRow(item.where, None, action, item.message, hint=item.hint)
            )
            plan.failed = plan.failed or action == "error"
            continue
        row = ImportRow(item.where, item.serial, "create", user=item.upn)
        plan.report.rows.append(row)
        old = existing.get(item.serial)
        if old is not None:
            row.action, row.message = _existing(ctx, old, item)
            plan.failed = plan.failed or row.action == "error"
            continue
        if item.upn and repo.user_key(item.upn) not in plan.user_ids:
            new_users.append(_new_user(plan, item.upn, now_dt))
        new_tokens.append(_token_values(ctx, plan, item, source, now_dt))
    if plan.staging is not None and not plan.failed:
        plan.staging.add(conn, plan.staging.users, new_users)
        plan.staging.add(conn, plan.staging.tokens, new_tokens)


def _existing(ctx: ServerContext, old: TokenRecord, rec: SeedRecord) -> tuple[str, str]:
    """(action, message) for a serial the inventory already holds."""
    if not _same_seed(ctx, old, rec):
        return "error", f"serial {rec.serial} is already in the inventory with a different seed"
    if rec.upn and old.owner and old.owner.casefold() != rec.upn.casefold():
        return "error", f"serial {rec.serial} is assigned to {old.owner}, not {rec.upn}"
    return "unchanged", "already imported"


def _new_user(plan: _Plan, upn: str, now_dt: datetime) -> dict[str, Any]:
    """A user the file assigns tokens to and the server does not have yet."""
    values = repo.user_values(
        upn,
        password_hash=None,
        role="user",
        display_name="",
        must_change_password=False,
        now=now_dt,
    )
    plan.user_ids[values["username_key"]] = values["id"]
    plan.report.created_users.append(upn)
    return values


def _token_values(
    ctx: ServerContext, plan: _Plan, rec: SeedRecord, source: str, now_dt: datetime
) -> dict[str, Any]:
    """A tokens row for a new serial, its secret sealed with the key the plan was made under
    (not sealed at all when nothing will be written)."""
    token_id = repo.new_id()
    owner_id = plan.user_ids[repo.user_key(rec.upn)] if rec.upn else None
    plan.created += 1
    plan.assigned += owner_id is not None
    writing = plan.staging is not None and not plan.failed
    base = TokenState(
        last_step=rec.counter - 1 if rec.type is OtpType.HOTP else -1, drift=rec.drift
    )
    return {
        "id": token_id,
        "serial": rec.serial,
        "kind": "classic",
        "type": rec.type.value,
        "algorithm": rec.algorithm.value,
        "digits": rec.digits,
        "period": rec.period,
        "secret_enc": ctx.ring.seal(rec.secret, token_id, plan.kid) if writing else b"",
        "owner_id": owner_id,
        "label": DEFAULT_LABELS["classic"] if owner_id else "",
        "state": "active",
        **state_values(base),
        "version": 0,
        "imported_drift": rec.drift,
        "manufacturer": rec.manufacturer,
        "model": rec.model,
        "source": source[:255],
        "created_at": now_dt,
        "activated_at": now_dt if owner_id else None,
        "last_used_at": None,
        "expires_at": None,
    }


def _audit_import(
    conn: Connection,
    ctx: ServerContext,
    plan: _Plan,
    actor: str,
    client: str | None,
    source: str,
) -> None:
    report = plan.report
    details: dict[str, Any] = {"source": source[:255], "format": report.format}
    if report.ok and not report.dry_run:
        details |= {
            "created": plan.created,
            "unchanged": report.count("unchanged"),
            "assigned": plan.assigned,
            "created_users": len(report.created_users),
        }
    else:
        details |= {
            "rows": len(report.rows),
            "errors": report.count("error"),
            "dry_run": report.dry_run,
        }
    outcome = "success" if report.ok else "failure"
    auditlog.record(
        conn,
        ctx,
        actor=actor,
        action="token.import",
        outcome="dry_run" if report.dry_run and report.ok else outcome,
        client=client,
        reason=None if report.ok else "bad_rows",
        details=details,
    )


def list_inventory(ctx: ServerContext, **filters: Any) -> dict[str, Any]:
    locked = filters.pop("locked", None)
    with ctx.engine.connect() as conn:
        items, total = repo.list_tokens(conn, locked_at=ctx.now() if locked else None, **filters)
    return {"items": [token_view(t, ctx.now()) for t in items], "total": total}


def _by_serial(conn: Any, serial: str) -> TokenRecord:
    """By serial; tokens without one (app methods) are addressed by their id."""
    check_serial(serial)  # a serial no column can hold is a 400 here, not a database error
    token = repo.get_token_by_serial(conn, serial) or repo.get_token(conn, serial)
    if token is None:
        raise NotFound(f"no token with serial {serial!r}", hint=NO_TOKEN_HINT)
    return token


def assign(
    ctx: ServerContext,
    serial: str,
    username: str,
    *,
    label: str | None = None,
    actor: str,
    client: str | None = None,
) -> dict[str, Any]:
    with ctx.begin() as conn:
        token = _by_serial(conn, serial)
        user = repo.get_user(conn, username)
        if user is None:
            raise NotFound(f"no user {username!r}", hint=NO_USER_HINT)
        if token.owner_id == user.id:
            raise Conflict(
                f"token {serial} is already assigned to {user.username}",
                hint="nothing to do: the user can already sign in with it",
            )
        if token.owner_id is not None:
            raise Conflict(
                f"token {serial} is assigned to {token.owner}",
                hint="unassign it first (a token is re-used when its owner leaves)",
            )
        if token.state != "active":
            raise Conflict(
                f"token {serial} is {token.state}", hint="only an active token can be assigned"
            )
        if repo.count_methods(conn, user.id) >= ctx.settings.max_methods:
            raise Conflict(
                f"user {user.username!r} already has {ctx.settings.max_methods} methods",
                hint="remove one of the user's methods first (KEYFOB_MAX_METHODS sets the limit)",
            )
        fresh = dataclasses.replace(
            token.verification,
            fail_count=0,
            locked_until=0.0,
            resync_step=None,
            resync_offset=None,
            resync_at=None,
        )
        repo.update_token(
            conn,
            token.id,
            owner_id=user.id,
            activated_at=ctx.now_dt(),
            label=(label or DEFAULT_LABELS[token.kind])[:255],
            **state_values(fresh),
        )
        auditlog.record(
            conn,
            ctx,
            actor=actor,
            action="token.assign",
            outcome="success",
            target_user=user.username,
            target_serial=serial,
            client=client,
        )
        return token_view(_by_serial(conn, serial), ctx.now())


def unassign(
    ctx: ServerContext, serial: str, *, actor: str, client: str | None = None
) -> dict[str, Any]:
    with ctx.begin() as conn:
        token = _by_serial(conn, serial)
        if token.owner_id is None:
            raise Conflict(
                f"token {serial} is not assigned", hint="nothing to do: it is in the inventory"
            )
        if token.kind == "app":
            raise Conflict(
                "an app method cannot be re-assigned; remove it instead",
                hint="remove it from the user's methods; the user can then set up a new one",
            )
        repo.update_token(conn, token.id, **_released(token))
        auditlog.record(
            conn,
            ctx,
            actor=actor,
            action="token.unassign",
            outcome="success",
            target_user=token.owner,
            target_serial=serial,
            client=client,
        )
        return token_view(_by_serial(conn, serial), ctx.now())


def unlock_token(
    ctx: ServerContext, serial: str, *, actor: str, client: str | None = None
) -> dict[str, Any]:
    with ctx.begin() as conn:
        token = _by_serial(conn, serial)
        repo.update_token(conn, token.id, **state_values(unlock(token.verification)))
        auditlog.record(
            conn,
            ctx,
            actor=actor,
            action="token.unlock",
            outcome="success",
            target_user=token.owner,
            target_serial=serial,
            client=client,
            details={"fail_count": token.verification.fail_count},
        )
        return token_view(_by_serial(conn, serial), ctx.now())


def resync_token(
    ctx: ServerContext,
    serial: str,
    first_code: str,
    second_code: str,
    *,
    actor: str,
    client: str | None = None,
    owner: str | None = None,
) -> dict[str, Any]:
    """Two consecutive codes at once; ``owner`` restricts it to that user's own token."""
    with ctx.begin() as conn:
        token = _by_serial(conn, serial)
        if owner is not None and (token.owner or "").casefold() != owner.casefold():
            raise NotFound(f"no token with serial {serial!r}", hint=NO_TOKEN_HINT)
        ok, _decision = resync_codes(
            conn, ctx, token, first_code, second_code, actor=actor, client=client
        )
    if not ok:
        raise CodeRejected(
            "the two codes were not accepted",
            hint="type two codes the token shows one after the other",
        )
    with ctx.engine.connect() as conn:
        return token_view(_by_serial(conn, serial), ctx.now())


def export(
    ctx: ServerContext,
    fmt: str,
    *,
    password: str | None = None,
    assigned_only: bool = False,
    actor: str,
    client: str | None = None,
) -> bytes:
    """Entra CSV (for upload to Azure) or password-encrypted PSKC of inventory tokens."""
    with ctx.begin() as conn:
        items, _ = repo.list_tokens(
            conn, kind="classic", assigned=True if assigned_only else None, limit=10**9
        )
        records = [
            SeedRecord(
                serial=t.serial or t.id,
                secret=ctx.ring.open(t.secret_enc, t.id),
                type=t.type,
                algorithm=t.algorithm,
                digits=t.digits,
                period=t.period,
                counter=t.verification.last_step + 1 if t.type is OtpType.HOTP else 0,
                drift=t.verification.drift,
                upn=t.owner,
                manufacturer=t.manufacturer,
                model=t.model,
            )
            for t in items
            if t.state == "active"
        ]
        if fmt == "azure-csv":
            out = write_entra_csv([r for r in records if r.type is OtpType.TOTP]).encode()
        elif fmt == "pskc":
            if not password:
                raise ServiceError(
                    "a PSKC export needs a password to encrypt it with",
                    hint="give a password; the file holds every seed, so never export it bare",
                )
            out = write_pskc(records, password)
        else:
            raise ServiceError(f"unknown export format {fmt!r}", hint="use azure-csv or pskc")
        auditlog.record(
            conn,
            ctx,
            actor=actor,
            action="token.export",
            outcome="success",
            client=client,
            details={"format": fmt, "tokens": len(records)},
        )
    return out
