"""The token inventory: import seed files, list, assign and re-assign, unlock, resync, export.

Imports are all-or-nothing: the whole file is read and checked first (every row's problem is
reported with its line), and only a clean file is written, in one short transaction (every row is
prepared before it, see :func:`import_seeds`). Re-importing is
idempotent by serial: the same serial with the same seed is "unchanged"; the same serial with a
*different* seed is an error, never a silent overwrite of a factory seed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
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
from keyfob.server import auditlog, directory
from keyfob.server.accounts import user_named
from keyfob.server.context import ServerContext
from keyfob.server.decisions import resync_codes
from keyfob.server.enrolment import DEFAULT_LABELS, check_method_limit, released
from keyfob.server.errors import CodeRejected, Conflict, NotFound, ServiceError
from keyfob.server.inputs import SERIAL_MAX, check_prefix, check_serial
from keyfob.server.store import keystate, repo
from keyfob.server.store.records import (
    Page,
    TokenFilter,
    TokenRecord,
    otp_shape,
    state_values,
)
from keyfob.server.store.vocab import ImportAction, Role, TokenKind, TokenStatus

_CHUNK = 500  # rows compared with the inventory per round trip (and per IN list)
NO_TOKEN_HINT = "check the serial (an app method has none: use its id); the token list shows all"


@dataclass(slots=True)
class ImportRow:
    where: str
    serial: str | None
    action: ImportAction
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
        return not any(r.action is ImportAction.ERROR for r in self.rows)

    def count(self, action: ImportAction) -> int:
        return sum(1 for r in self.rows if r.action == action)

    def summary(self) -> dict[str, Any]:
        """Everything but the rows (a 300 000-row file's rows are 100 MB as dicts)."""
        return {
            "format": self.format,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "imported": 0 if (self.dry_run or not self.ok) else self.count(ImportAction.CREATE),
            "created": self.count(ImportAction.CREATE),
            "unchanged": self.count(ImportAction.UNCHANGED),
            "errors": self.count(ImportAction.ERROR),
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
    # user_key -> None (a directory user: their row exists) or the directory's refusal
    directory: dict[str, str | None] = field(default_factory=dict)
    failed: bool = False  # a row has an error (report.ok, without counting every row again)
    allow_retired: bool = False  # a retired serial may come back (its old row is replaced)
    replaced: list[str] = field(default_factory=list)  # ids of retired rows to delete first
    created: int = 0
    assigned: int = 0


def _same_seed(ctx: ServerContext, existing: TokenRecord, rec: SeedRecord) -> bool:
    secret = ctx.ring.open(existing.secret_enc, existing.id)
    return secret == rec.secret and otp_shape(existing) == otp_shape(rec)


def import_seeds(
    ctx: ServerContext,
    data: bytes | IO[bytes],
    *,
    fmt: str | None = None,
    source: str = "upload",
    password: str | None = None,
    key: str | None = None,
    mac_check: str = MacCheck.STRICT,
    dry_run: bool = False,
    allow_retired: bool = False,
    actor: str,
    client: str | None = None,
) -> ImportReport:
    """Import a seed file: bytes, or a seekable binary file, read as it goes. ``key`` is a
    PSKC pre-shared key in hex, as every front end takes it.

    Every row is read, checked, compared with the inventory and its secret sealed *before* the
    write transaction, and waits in temporary tables (:class:`repo.Staging`); the transaction
    then only copies them over. On SQLite it holds the one write lock that every validation
    needs for its audit row, so it must not last as long as reading the file does (100 000
    rows: seconds to read and seal, a fraction of that to copy). All or nothing still holds: a
    bad row writes nothing, and so does a serial or user that another writer added meanwhile
    (the copy fails on the unique index and the transaction with it: :class:`Conflict`)."""
    stream = stream_seed_file(
        data,
        SeedFormat(fmt) if fmt else None,
        password=password,
        key=preshared_key(key),
        mac_check=mac_check,
    )
    with ctx.engine.connect() as conn:
        plan = _plan(ctx, conn, stream, source, dry_run, allow_retired)
        try:
            with ctx.begin(conn):
                if plan.staging is not None:
                    for token_id in plan.replaced:  # retired serials, imported again
                        repo.delete_token(conn, token_id)
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


def preshared_key(text: str | None) -> bytes | None:
    """A PSKC pre-shared key typed as hex (spaces allowed), or None when none was given."""
    if not text or not text.strip():
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ServiceError(
            "the pre-shared key is not hex", hint="give the PSKC pre-shared key as hex digits"
        ) from None


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
    ctx: ServerContext,
    conn: Connection,
    stream: SeedStream,
    source: str,
    dry_run: bool,
    allow_retired: bool = False,
) -> _Plan:
    """Read the whole stream, a chunk of rows per round trip to the inventory."""
    plan = _Plan(
        report=ImportReport(stream.format, dry_run),
        kid=keystate.current_kid(conn) or ctx.ring.preferred,
        staging=None if dry_run else repo.Staging(conn),
        allow_retired=allow_retired,
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
    _admit_upns(ctx, plan, records)  # before this chunk's first statement on ``conn``
    existing = repo.serials_present(conn, [r.serial for r in records])
    new_upns = [r.upn for r in records if r.upn and repo.user_key(r.upn) not in plan.user_ids]
    plan.user_ids.update(repo.user_ids(conn, new_upns))
    new_users: list[dict[str, Any]] = []
    new_tokens: list[dict[str, Any]] = []
    for item in chunk:
        if not isinstance(item, SeedRecord):
            warned = isinstance(item, RowWarning)
            action = ImportAction.WARNING if warned else ImportAction.ERROR
            plan.report.rows.append(
                ImportRow(item.where, None, action, item.message, hint=item.hint)
            )
            plan.failed = plan.failed or not warned
            continue
        row = ImportRow(item.where, item.serial, ImportAction.CREATE, user=item.upn)
        plan.report.rows.append(row)
        old = existing.get(item.serial)
        if old is not None and old.state is TokenStatus.RETIRED and plan.allow_retired:
            plan.replaced.append(old.id)  # created anew below, its retired row deleted first
        elif old is not None and old.state is TokenStatus.RETIRED:
            when = f" on {old.retired_at:%Y-%m-%d}" if old.retired_at else ""
            row.action, row.hint = ImportAction.ERROR, RETIRED_HINT
            row.message = f"serial {item.serial} was retired{when}: its secret was destroyed"
            plan.failed = True
            continue
        elif old is not None:
            row.action, row.message = _existing(ctx, old, item)
            plan.failed = plan.failed or row.action is ImportAction.ERROR
            continue
        refusal = plan.directory.get(repo.user_key(item.upn)) if item.upn else None
        if refusal is not None:
            row.action, row.hint = ImportAction.ERROR, DIRECTORY_REFUSED_HINT
            row.message = f"{item.upn} is a directory user who may not sign in ({refusal})"
            plan.failed = True
            continue
        new_user = bool(item.upn) and repo.user_key(item.upn or "") not in plan.user_ids
        if new_user and item.upn:
            new_users.append(_new_user(plan, item.upn, now_dt))
        row.message = _created_message(plan.report.dry_run, item.upn, new_user)
        new_tokens.append(_token_values(ctx, plan, item, source, now_dt))
    if plan.staging is not None and not plan.failed:
        plan.staging.add(conn, plan.staging.users, new_users)
        plan.staging.add(conn, plan.staging.tokens, new_tokens)


def _created_message(dry_run: bool, upn: str | None, new_user: bool) -> str:
    """What happens to a new serial, in the tense of the run: a preview only says what an import
    would do."""
    verb = "would be" if dry_run else "was"
    said = "would be created" if dry_run else "created"
    if not upn:
        return said
    if new_user:
        return f"{said} and assigned to {upn}, a new user that {verb} created"
    return f"{said} and assigned to {upn}"


RETIRED_HINT = (
    "a retired token never comes back by mistake; if this really is a new seed for that "
    "serial, import again with --allow-retired"
)
DIRECTORY_REFUSED_HINT = (
    "check the account in the directory (disabled, or outside the directory's group), "
    "or leave the row's user empty to import the token to stock"
)


def _admit_upns(ctx: ServerContext, plan: _Plan, records: list[SeedRecord]) -> None:
    """Look every user name the plan meets for the first time up in the directories
    (docs/design.md §7), so that a directory user's token goes to their row (made or renamed
    here, by the directory code's own short transaction) and not to a new local user who would
    shadow them. It runs before the chunk's reads, so they see those rows, and never inside the
    import's write transaction, which on SQLite holds the process's write lock that the
    directory code's transaction would wait for. A name the directory refuses (disabled,
    outside the group) is a row error; no answer from the directory fails the import (503).
    A dry run looks names up too: it makes the directory users' rows, as a sign-in would."""
    for upn in dict.fromkeys(r.upn for r in records if r.upn):
        key = repo.user_key(upn)
        if key in plan.user_ids or key in plan.directory:
            continue
        admission = directory.admit(ctx, upn)
        if admission.directory_user:
            why = (admission.refusal or "").partition(":")[2] or "no longer in the directory"
            plan.directory[key] = why if admission.refusal else None


def _existing(ctx: ServerContext, old: TokenRecord, rec: SeedRecord) -> tuple[ImportAction, str]:
    """(action, message) for a serial the inventory already holds."""
    error = ImportAction.ERROR
    if not _same_seed(ctx, old, rec):
        return error, f"serial {rec.serial} is already in the inventory with a different seed"
    if rec.upn and old.owner and old.owner.casefold() != rec.upn.casefold():
        return error, f"serial {rec.serial} is assigned to {old.owner}, not {rec.upn}"
    return ImportAction.UNCHANGED, "already imported"


def _new_user(plan: _Plan, upn: str, now_dt: datetime) -> dict[str, Any]:
    """A user the file assigns tokens to and the server does not have yet."""
    values = repo.user_values(upn, now=now_dt)
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
    return repo.token_values(
        **otp_shape(rec),
        id=token_id,
        serial=rec.serial,
        kind=TokenKind.CLASSIC,
        secret_enc=ctx.ring.seal(rec.secret, token_id, plan.kid) if writing else b"",
        owner_id=owner_id,
        label=DEFAULT_LABELS[TokenKind.CLASSIC] if owner_id else "",
        state=TokenStatus.ACTIVE,
        **state_values(base),
        imported_drift=rec.drift,
        manufacturer=rec.manufacturer,
        model=rec.model,
        source=source[:255],
        created_at=now_dt,
        activated_at=now_dt if owner_id else None,
    )


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
            "unchanged": report.count(ImportAction.UNCHANGED),
            "assigned": plan.assigned,
            "created_users": len(report.created_users),
        }
    else:
        details |= {
            "rows": len(report.rows),
            "errors": report.count(ImportAction.ERROR),
            "dry_run": report.dry_run,
        }
    outcome = "success" if report.ok else "failure"
    outcome = "dry_run" if report.dry_run and report.ok else outcome
    reason = None if report.ok else "bad_rows"
    row = auditlog.event(
        ctx, "token.import", outcome, actor, client, reason=reason, details=details
    )
    auditlog.write(conn, row)
    if report.ok and not report.dry_run:
        # Each user the file brought is a user.create, as one made by hand is: one statement
        # per _CHUNK users (100 000 rows in one statement held 100 MB of values at once).
        made = {"source": source[:255], "role": Role.USER}
        for start in range(0, len(report.created_users), _CHUNK):
            users = [
                auditlog.event(ctx, "user.create", "success", actor, client, upn, details=made)
                for upn in report.created_users[start : start + _CHUNK]
            ]
            auditlog.record_all(conn, users)


def list_inventory(
    ctx: ServerContext, where: TokenFilter, *, limit: int = 100, offset: int = 0
) -> Page[TokenRecord]:
    hint = "filter by the first few characters of the serial"
    check_prefix(where.serial, "serial", SERIAL_MAX, hint=hint)
    with ctx.engine.connect() as conn:
        return repo.list_tokens(conn, where, now=ctx.now(), limit=limit, offset=offset)


def _by_serial(conn: Connection, serial: str) -> TokenRecord:
    """By serial; tokens without one (app methods) are addressed by their id."""
    check_serial(serial)  # a serial no column can hold is a 400 here, not a database error
    token = repo.get_token_by_serial(conn, serial) or repo.get_token(conn, serial)
    if token is None:
        raise NotFound(f"no token with serial {serial!r}", hint=NO_TOKEN_HINT)
    return token


# What one admin operation does to a token in the transaction: the audit row's target user
# and its details.
Change = Callable[[Connection, TokenRecord], tuple[str | None, dict[str, Any]]]


def _change(
    ctx: ServerContext,
    serial: str,
    action: str,
    change: Change,
    *,
    actor: str,
    client: str | None,
) -> TokenRecord:
    """One admin operation on one token in one transaction: find it, change it, write its
    audit row, and read it back as it now is."""
    with ctx.begin() as conn:
        token = _by_serial(conn, serial)
        target_user, details = change(conn, token)
        auditlog.success(conn, ctx, action, actor, client, target_user, serial, **details)
        return _by_serial(conn, serial)


def assign(
    ctx: ServerContext,
    serial: str,
    username: str,
    *,
    label: str | None = None,
    actor: str,
    client: str | None = None,
) -> TokenRecord:
    def to_user(conn: Connection, token: TokenRecord) -> tuple[str, dict[str, Any]]:
        user = user_named(conn, username)
        _check_assignable(token, serial, user.id, user.username)
        check_method_limit(ctx, conn, user)
        repo.update_token(
            conn,
            token.id,
            owner_id=user.id,
            activated_at=ctx.now_dt(),
            label=(label or DEFAULT_LABELS[token.kind])[:255],
            **state_values(unlock(token.verification)),
        )
        return user.username, {}

    directory.require(ctx, username)  # a directory user is looked up (their row made) first
    return _change(ctx, serial, "token.assign", to_user, actor=actor, client=client)


def _check_assignable(token: TokenRecord, serial: str, user_id: str, username: str) -> None:
    if token.owner_id == user_id:
        raise Conflict(
            f"token {serial} is already assigned to {username}",
            hint="nothing to do: the user can already sign in with it",
        )
    if token.owner_id is not None:
        raise Conflict(
            f"token {serial} is assigned to {token.owner}",
            hint="unassign it first (a token is re-used when its owner leaves)",
        )
    if token.state is not TokenStatus.ACTIVE:
        raise Conflict(
            f"token {serial} is {token.state}", hint="only an active token can be assigned"
        )


def unassign(
    ctx: ServerContext, serial: str, *, actor: str, client: str | None = None
) -> TokenRecord:
    def to_stock(conn: Connection, token: TokenRecord) -> tuple[str | None, dict[str, Any]]:
        if token.owner_id is None:
            raise Conflict(
                f"token {serial} is not assigned", hint="nothing to do: it is in the inventory"
            )
        if token.kind is TokenKind.APP:
            raise Conflict(
                "an app method cannot be re-assigned; remove it instead",
                hint="remove it from the user's methods; the user can then set up a new one",
            )
        repo.update_token(conn, token.id, **released(token))
        return token.owner, {}

    return _change(ctx, serial, "token.unassign", to_stock, actor=actor, client=client)


def unlock_token(
    ctx: ServerContext, serial: str, *, actor: str, client: str | None = None
) -> TokenRecord:
    def clear(conn: Connection, token: TokenRecord) -> tuple[str | None, dict[str, Any]]:
        repo.update_token(conn, token.id, **state_values(unlock(token.verification)))
        return token.owner, {"fail_count": token.verification.fail_count}

    return _change(ctx, serial, "token.unlock", clear, actor=actor, client=client)


def set_token_disabled(
    ctx: ServerContext, serial: str, disabled: bool, *, actor: str, client: str | None = None
) -> TokenRecord:
    """Disable a token or method (every code refused, owner kept), or enable it again."""

    def switch(conn: Connection, token: TokenRecord) -> tuple[str | None, dict[str, Any]]:
        wanted = TokenStatus.DISABLED if disabled else TokenStatus.ACTIVE
        if token.state is wanted:
            raise Conflict(f"token {serial} is already {wanted}", hint="nothing to do")
        if token.state in (TokenStatus.LOST, TokenStatus.RETIRED):
            raise Conflict(
                f"token {serial} is {token.state}",
                hint="a lost token comes back with 'found'; a retired one never does",
            )
        if token.state is TokenStatus.PENDING:
            raise Conflict(
                f"token {serial} is a pending enrolment",
                hint="remove it from the user's methods instead (keyfob admin user remove-method)",
            )
        repo.update_token(conn, token.id, state=wanted)
        return token.owner, {}

    action = "token.disable" if disabled else "token.enable"
    return _change(ctx, serial, action, switch, actor=actor, client=client)


def resync_token(
    ctx: ServerContext,
    serial: str,
    first_code: str,
    second_code: str,
    *,
    actor: str,
    client: str | None = None,
    owner: str | None = None,
) -> TokenRecord:
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
        return _by_serial(conn, serial)


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
        where = TokenFilter(kind=TokenKind.CLASSIC, assigned=True if assigned_only else None)
        items = repo.list_tokens(conn, where, now=ctx.now(), limit=10**9).items
        records = [_seed(ctx, t) for t in items if t.state is TokenStatus.ACTIVE]
        out = _written(fmt, records, password)
        auditlog.success(conn, ctx, "token.export", actor, client, format=fmt, tokens=len(records))
    return out


def _seed(ctx: ServerContext, t: TokenRecord) -> SeedRecord:
    """A stored token as a seed file holds it: the counter is the next one it will show."""
    return SeedRecord(
        serial=t.serial or t.id,
        secret=ctx.ring.open(t.secret_enc, t.id),
        **otp_shape(t),
        counter=t.verification.last_step + 1 if t.type is OtpType.HOTP else 0,
        drift=t.verification.drift,
        upn=t.owner,
        manufacturer=t.manufacturer,
        model=t.model,
    )


def _written(fmt: str, records: list[SeedRecord], password: str | None) -> bytes:
    if fmt == "azure-csv":
        return write_entra_csv([r for r in records if r.type is OtpType.TOTP]).encode()
    if fmt != "pskc":
        raise ServiceError(f"unknown export format {fmt!r}", hint="use azure-csv or pskc")
    if not password:
        raise ServiceError(
            "a PSKC export needs a password to encrypt it with",
            hint="give a password; the file holds every seed, so never export it bare",
        )
    return write_pskc(records, password)
