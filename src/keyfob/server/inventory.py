"""The token inventory: import seed files, list, assign and re-assign, unlock, resync, export.

Imports are all-or-nothing: the whole file is read and checked first (every row's problem is
reported with its line), and only a clean file is written, in one transaction. Re-importing is
idempotent by serial: the same serial with the same seed is "unchanged"; the same serial with a
*different* seed is an error, never a silent overwrite of a factory seed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from keyfob.formats.csvseeds import write_entra_csv
from keyfob.formats.pskc import MacCheck, write_pskc
from keyfob.formats.seedfile import SeedFormat, read_seed_file
from keyfob.formats.seeds import SeedRecord
from keyfob.otp import OtpType
from keyfob.otp.verify import TokenState, unlock
from keyfob.server import auditlog
from keyfob.server.context import ServerContext
from keyfob.server.decisions import resync_codes
from keyfob.server.enrolment import DEFAULT_LABELS, _released
from keyfob.server.errors import CodeRejected, Conflict, NotFound, ServiceError
from keyfob.server.store import repo
from keyfob.server.store.records import TokenRecord, state_values
from keyfob.server.views import token_view


@dataclass
class ImportRow:
    where: str
    serial: str | None
    action: str  # create | unchanged | error
    message: str = ""
    user: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class ImportReport:
    format: str
    dry_run: bool
    rows: list[ImportRow] = field(default_factory=list)
    created_users: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(r.action == "error" for r in self.rows)

    def sort(self) -> None:
        """File order: "line 7" before "line 12", "key 2" before "key 10"."""

        def position(row: ImportRow) -> tuple[int, str]:
            digits = "".join(ch if ch.isdigit() else " " for ch in row.where).split()
            return (int(digits[0]) if digits else 0, row.where)

        self.rows.sort(key=position)

    def count(self, action: str) -> int:
        return sum(1 for r in self.rows if r.action == action)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "imported": 0 if (self.dry_run or not self.ok) else self.count("create"),
            "created": self.count("create"),
            "unchanged": self.count("unchanged"),
            "errors": self.count("error"),
            "created_users": self.created_users,
            "rows": [r.as_dict() for r in self.rows],
        }


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
    data: bytes,
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
    parsed = read_seed_file(
        data, SeedFormat(fmt) if fmt else None, password=password, key=key, mac_check=mac_check
    )
    report = ImportReport(parsed.format, dry_run)
    report.rows += [ImportRow(e.where, None, "error", e.message) for e in parsed.errors]
    report.rows += [ImportRow(w.where, None, "warning", w.message) for w in parsed.warnings]
    now_dt = ctx.now_dt()
    with ctx.begin() as conn:
        kid = ctx.sealing_kid(conn)  # once: every row of this transaction seals with it
        existing = repo.serials_present(conn, [r.serial for r in parsed.records])
        upns = {r.upn for r in parsed.records if r.upn}
        known_users = {u: repo.get_user(conn, u) for u in upns}
        new_rows: list[dict[str, Any]] = []
        for rec in parsed.records:
            row = ImportRow(rec.where, rec.serial, "create", user=rec.upn)
            report.rows.append(row)
            old = existing.get(rec.serial)
            if old is not None:
                if not _same_seed(ctx, old, rec):
                    row.action, row.message = (
                        "error",
                        (f"serial {rec.serial} is already in the inventory with a different seed"),
                    )
                elif rec.upn and old.owner and old.owner.casefold() != rec.upn.casefold():
                    row.action, row.message = (
                        "error",
                        (f"serial {rec.serial} is assigned to {old.owner}, not {rec.upn}"),
                    )
                else:
                    row.action, row.message = "unchanged", "already imported"
                continue
            token_id = repo.new_id()
            base = TokenState(
                last_step=rec.counter - 1 if rec.type is OtpType.HOTP else -1, drift=rec.drift
            )
            new_rows.append(
                {
                    "id": token_id,
                    "serial": rec.serial,
                    "kind": "classic",
                    "type": rec.type.value,
                    "algorithm": rec.algorithm.value,
                    "digits": rec.digits,
                    "period": rec.period,
                    "secret_enc": ctx.ring.seal(rec.secret, token_id, kid),
                    "owner_id": None,
                    "label": "",
                    "state": "active",
                    **state_values(base),
                    "version": 0,
                    "imported_drift": rec.drift,
                    "manufacturer": rec.manufacturer,
                    "model": rec.model,
                    "source": source[:255],
                    "created_at": now_dt,
                    "activated_at": None,
                    "last_used_at": None,
                    "expires_at": None,
                    "_upn": rec.upn,
                }
            )
        report.sort()
        if dry_run or not report.ok:
            report.created_users = sorted(u for u, rec in known_users.items() if rec is None)
            auditlog.record(
                conn,
                ctx,
                actor=actor,
                action="token.import",
                outcome="dry_run"
                if dry_run and report.ok
                else ("success" if report.ok else "failure"),
                client=client,
                reason=None if report.ok else "bad_rows",
                details={
                    "source": source[:255],
                    "format": parsed.format,
                    "rows": len(report.rows),
                    "errors": report.count("error"),
                    "dry_run": dry_run,
                },
            )
            return report
        for upn, user in known_users.items():
            if user is None:
                known_users[upn] = repo.insert_user(
                    conn,
                    upn,
                    password_hash=None,
                    role="user",
                    display_name="",
                    must_change_password=False,
                    now=now_dt,
                )
                report.created_users.append(upn)
        for row in new_rows:
            upn = row.pop("_upn")
            if upn:
                row["owner_id"] = known_users[upn].id  # type: ignore[union-attr]
                row["label"] = DEFAULT_LABELS["classic"]
                row["activated_at"] = now_dt
        repo.insert_tokens(conn, new_rows)
        auditlog.record(
            conn,
            ctx,
            actor=actor,
            action="token.import",
            outcome="success",
            client=client,
            details={
                "source": source[:255],
                "format": parsed.format,
                "created": len(new_rows),
                "unchanged": report.count("unchanged"),
                "assigned": sum(1 for r in new_rows if r["owner_id"]),
                "created_users": len(report.created_users),
            },
        )
    return report


def list_inventory(ctx: ServerContext, **filters: Any) -> dict[str, Any]:
    locked = filters.pop("locked", None)
    with ctx.engine.connect() as conn:
        items, total = repo.list_tokens(conn, locked_at=ctx.now() if locked else None, **filters)
    return {"items": [token_view(t, ctx.now()) for t in items], "total": total}


def _by_serial(conn: Any, serial: str) -> TokenRecord:
    """By serial; tokens without one (app methods) are addressed by their id."""
    token = repo.get_token_by_serial(conn, serial) or repo.get_token(conn, serial)
    if token is None:
        raise NotFound(f"no token with serial {serial!r}")
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
            raise NotFound(f"no user {username!r}")
        if token.owner_id == user.id:
            raise Conflict(f"token {serial} is already assigned to {user.username}")
        if token.owner_id is not None:
            raise Conflict(
                f"token {serial} is assigned to {token.owner}",
                hint="unassign it first (a token is re-used when its owner leaves)",
            )
        if token.state != "active":
            raise Conflict(f"token {serial} is {token.state}")
        if repo.count_methods(conn, user.id) >= ctx.settings.max_methods:
            raise Conflict(f"user {user.username!r} already has {ctx.settings.max_methods} methods")
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
            raise Conflict(f"token {serial} is not assigned")
        if token.kind == "app":
            raise Conflict("an app method cannot be re-assigned; remove it instead")
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
            raise NotFound(f"no token with serial {serial!r}")
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
                raise ServiceError("a PSKC export needs a password to encrypt it with")
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
